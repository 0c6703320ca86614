#!/usr/bin/env bash
# `make demo`: a fresh two-cluster lab with real pods, a multi-primary mesh on two networks built by the collection
# from Istio 1.30.3's charts, verified, then Istio's "Verify the installation": helloworld v1 in cluster1, v2 in
# cluster2, curl from each cluster answered by both (across networks through the east-west gateways).
set -euo pipefail
cd "$(dirname "$0")/.."
ISTIO=${ISTIO:-1.30.3}
eval "$(meshlab env --istio "$ISTIO")"
export ANSIBLE_CONFIG=$PWD/ansible.cfg
demo=.cache/demo
mkdir -p "$demo"
meshlab down >/dev/null   # the demo's own lab from an earlier run, if any (stopped by pid)
meshlab up --clusters 2
meshlab inventory --model multi-primary-multi-network --istio "$ISTIO" --ca-dir "$demo/ca" -o "$demo/inventory.yml"
echo "--- inventory ($demo/inventory.yml)"
cat "$demo/inventory.yml"
mark=$(meshlab mark)
SECONDS=0
ansible-playbook -i "$demo/inventory.yml" playbooks/multi-primary.yml
echo "--- converged in ${SECONDS}s; admin writes per cluster: $(meshlab writes --since "$mark" --json)"
mark=$(meshlab mark)
SECONDS=0
ansible-playbook -i "$demo/inventory.yml" playbooks/multi-primary.yml | tail -n 4
echo "--- re-run in ${SECONDS}s; admin writes per cluster: $(meshlab writes --since "$mark" --json)"
echo "--- each istiod's view of the mesh"
ansible-playbook -i "$demo/inventory.yml" playbooks/verify.yml
echo "--- Istio's 'Verify the installation' with the release's samples (real Envoy sidecars and gateways)"
contexts=$(meshlab status --json | python3 -c 'import json,sys; print(" ".join(c["context"] for c in json.load(sys.stdin)["clusters"]))')
i=0
for ctx in $contexts; do
  i=$((i + 1))
  kubectl --context "$ctx" create namespace sample
  kubectl --context "$ctx" label namespace sample istio-injection=enabled
  kubectl --context "$ctx" apply -n sample -f "$MESHLAB_ISTIO_SAMPLES/helloworld/helloworld.yaml" -l service=helloworld
  kubectl --context "$ctx" apply -n sample -f "$MESHLAB_ISTIO_SAMPLES/helloworld/helloworld.yaml" -l version=v$i
  kubectl --context "$ctx" apply -n sample -f "$MESHLAB_ISTIO_SAMPLES/curl/curl.yaml"
done >/dev/null
for ctx in $contexts; do
  kubectl --context "$ctx" wait -n sample --for=condition=Ready pod --all --timeout=120s >/dev/null
done
meshlab status | sed -n '/data plane/,$p'
for ctx in $contexts; do
  # Endpoints of the other network reach the proxies a few seconds after the pods are Ready: ask until both answer.
  for attempt in $(seq 1 15); do
    out=$(kubectl --context "$ctx" exec -n sample deploy/curl -c curl -- \
          sh -c 'for i in $(seq 1 10); do curl -sS --max-time 5 helloworld.sample:5000/hello; done' 2>/dev/null || true)
    if grep -q "version: v1" <<<"$out" && grep -q "version: v2" <<<"$out"; then break; fi
    sleep 2
  done
  echo "--- curl helloworld.sample:5000/hello from $ctx, 10 requests:"
  sort <<<"$out" | uniq -c
  if ! { grep -q "version: v1" <<<"$out" && grep -q "version: v2" <<<"$out"; }; then
    echo "make demo: $ctx was not answered by both versions" >&2
    exit 1
  fi
done
cat <<EOT
--- The lab keeps running so you can look around:
    eval "\$(meshlab env --istio $ISTIO)"; kubectl --context lab-c1 get pods -n sample; istioctl --context lab-c1 proxy-status
    meshlab status    # which pods run for real
    Stop it with: make lab-down
EOT
