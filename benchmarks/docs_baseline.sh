#!/usr/bin/env bash
# Baseline for benchmarks/compare.py (prints figures; not a test): Istio's documented procedure "Install
# Multi-Primary on different networks" done by hand, as a plain sequential script of openssl/kubectl/helm/istioctl
# commands, cluster1 then cluster2 at every step as the docs do:
#   plug-in CA (tools/certs profile, with openssl) -> network label -> helm base + istiod (meshID, clusterName,
#   network) -> east-west gateway (gateway chart, networkGateway) and its external address -> expose-services.yaml
#   -> istioctl create-remote-secret | kubectl apply, both ways -> wait until each istiod reports the other synced.
#
#   eval "$(meshlab env)"; benchmarks/docs_baseline.sh [CTX1 CTX2]
#
# Needs KUBECONFIG, kubectl/helm/istioctl on PATH and MESHLAB_ISTIO_CHARTS (or ISTIO_CHARTS), as `meshlab env`
# exports them. Contexts default to the first two of the kubeconfig. Prints "baseline: N.N s" last.
set -euo pipefail

CHARTS=${ISTIO_CHARTS:-${MESHLAB_ISTIO_CHARTS:?set MESHLAB_ISTIO_CHARTS or ISTIO_CHARTS (meshlab env)}}
mapfile -t all_contexts < <(kubectl config get-contexts -o name)
CTX1=${1:-${all_contexts[0]}}
CTX2=${2:-${all_contexts[1]}}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s.%N)
step() { printf '%6.1f s  %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$*"; }

# --- Plug-in CA: one root, one intermediate per cluster (Istio's tools/certs profile: RSA 4096, SHA-256) -------------
step "certificates"
cd "$WORK"
openssl req -x509 -newkey rsa:4096 -nodes -keyout root-key.pem -out root-cert.pem -days 3650 -sha256 \
  -subj "/O=Istio/CN=Root CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,keyCertSign" 2>/dev/null
for c in cluster1 cluster2; do
  mkdir -p "$c"
  openssl req -newkey rsa:4096 -nodes -keyout "$c/ca-key.pem" -out "$c/ca.csr" -sha256 \
    -subj "/O=Istio/CN=Intermediate CA/L=$c" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,keyCertSign\nsubjectAltName=DNS:istiod.istio-system.svc\n' > "$c/ext.cnf"
  openssl x509 -req -in "$c/ca.csr" -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -days 3650 -sha256 \
    -extfile "$c/ext.cnf" -out "$c/ca-cert.pem" 2>/dev/null
  cat "$c/ca-cert.pem" root-cert.pem > "$c/cert-chain.pem"
  cp root-cert.pem "$c/"
done

# --- Per cluster: namespace, network label, cacerts, control plane -------------------------------------------------
install_cluster() {
  local ctx=$1 cluster=$2 network=$3
  step "$cluster: namespace, network label, cacerts"
  kubectl --context "$ctx" create namespace istio-system
  kubectl --context "$ctx" label namespace istio-system "topology.istio.io/network=$network"
  kubectl --context "$ctx" create secret generic cacerts -n istio-system \
    --from-file="$cluster/ca-cert.pem" --from-file="$cluster/ca-key.pem" \
    --from-file="$cluster/root-cert.pem" --from-file="$cluster/cert-chain.pem"
  step "$cluster: helm install istio-base, istiod"
  helm install istio-base "$CHARTS/base" -n istio-system --kube-context "$ctx"
  helm install istiod "$CHARTS/istio-control/istio-discovery" -n istio-system --kube-context "$ctx" \
    --set global.meshID=mesh1 --set "global.multiCluster.clusterName=$cluster" --set "global.network=$network" --wait
}

eastwest_cluster() {
  local ctx=$1 cluster=$2 network=$3
  step "$cluster: east-west gateway"
  helm install istio-eastwestgateway "$CHARTS/gateway" -n istio-system --kube-context "$ctx" \
    --set name=istio-eastwestgateway --set "networkGateway=$network"
  # The docs: "Wait for the east-west gateway to be assigned an external IP address".
  until [ -n "$(kubectl --context "$ctx" get svc istio-eastwestgateway -n istio-system \
      -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}')" ]; do
    sleep 1
  done
  step "$cluster: expose services (samples/multicluster/expose-services.yaml)"
  kubectl --context "$ctx" apply -n istio-system -f - <<'EOF'
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
spec:
  selector:
    istio: eastwestgateway
  servers:
    - port:
        number: 15443
        name: tls
        protocol: TLS
      tls:
        mode: AUTO_PASSTHROUGH
      hosts:
        - "*.local"
EOF
}

install_cluster "$CTX1" cluster1 network1
eastwest_cluster "$CTX1" cluster1 network1
install_cluster "$CTX2" cluster2 network2
eastwest_cluster "$CTX2" cluster2 network2

# --- Endpoint discovery: each cluster's remote secret into the other ------------------------------------------------
step "remote secrets"
istioctl create-remote-secret --context="$CTX1" --name=cluster1 | kubectl apply -f - --context="$CTX2"
istioctl create-remote-secret --context="$CTX2" --name=cluster2 | kubectl apply -f - --context="$CTX1"

# --- Same end state as the collection's verify: each istiod reports the other cluster synced -----------------------
step "waiting for istiod to sync"
synced() { istioctl remote-clusters --context "$1" 2>/dev/null | awk -v id="$2" '$1 == id && /synced/ {f=1} END {exit !f}'; }
deadline=$((SECONDS + 180))
until synced "$CTX1" cluster2 && synced "$CTX2" cluster1; do
  [ $SECONDS -lt $deadline ] || { echo "istiod did not report the remote clusters synced within 180 s" >&2; exit 1; }
  sleep 1
done
istioctl remote-clusters --context "$CTX1"
istioctl remote-clusters --context "$CTX2"
printf 'baseline: %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
