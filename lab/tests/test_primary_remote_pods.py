"""Primary-remote on two networks with real pods, as Istio's docs set it up: the collection's primary-remote.yml
(Istio 1.30.3, Helm) on a real-dataplane lab, with no lab-only inventory value for the remote's pilot address.

The remote's istiod chart (remote profile, `global.remotePilotAddress` = the primary's east-west gateway address)
renders a selectorless Service `istiod` and an EndpointSlice with that address. The remote's API server calls the
injection webhook by that Service's ClusterIP (the supervisor's kube-proxy forwarder), which crosses the primary's
gateway (15017) to the istiod pod; injected pods of the remote reach istiod.istio-system.svc:15012 through its
endpoint, the same gateway (15012). Then Istio's helloworld check across both clusters. Tests run in file order on
one lab."""
import collections
import ipaddress
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from meshlab import kubeproxy, procs
from conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real pods need root (network namespaces, mounts)")

REPO = Path(__file__).resolve().parents[2]
RELEASE = "1.30.3"
SAMPLE_NS = "sample"
HELLO = re.compile(r"Hello version: (v\d), instance: (\S+)")


@pytest.fixture(scope="module")
def mesh(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("primary-remote")
    env = dict(lab.env, MESHLAB_HOME=str(lab.lab.home), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    home = str(lab.lab.home)
    for line in lab.run("meshlab", "--home", home, "env", "--istio", RELEASE).stdout.splitlines():
        key, dummy, value = line[len("export "):].partition("=")
        env[key] = value.replace("$PATH", os.environ["PATH"])
    inv = d / "inventory.yml"
    lab.run("meshlab", "--home", home, "inventory", "--model", "primary-remote-multi-network", "--istio", RELEASE, "--ca-dir",
            str(d / "ca"), "-o", str(inv))
    started = time.monotonic()
    # The helloworld check is done below, by hand as Istio's docs do; the collection's own (opt-in) stays off.
    proc = subprocess.run(["ansible-playbook", "-i", str(inv), str(REPO / "playbooks" / "primary-remote.yml"),
                           "-e", "istio_verify_traffic=false"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    print(f"primary-remote.yml: {time.monotonic() - started:.1f}s")
    return {"inventory": yaml.safe_load(inv.read_text()), "env": env}


def _gateway_pod(lab, ctx):
    return lab.kjson(ctx, "get", "pods", "-n", "istio-system", "-l", "istio=eastwestgateway")["items"][0]


def _gateway_clusters(lab, ctx):
    """cx_total per upstream cluster name, from the east-west gateway's Envoy (/clusters admin page)."""
    out = lab.kubectl(ctx, "exec", "-n", "istio-system", _gateway_pod(lab, ctx)["metadata"]["name"], "-c",
                      "istio-proxy", "--", "curl", "-s", "localhost:15000/clusters").stdout
    totals = collections.Counter()
    for line in out.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "cx_total":
            totals[parts[0]] += int(parts[3])
    return totals


def test_inventory_has_no_lab_pilot_address(mesh):
    assert "istio_remote_pilot_address" not in json.dumps(mesh["inventory"])


def test_remote_istiod_service_has_the_primary_gateway_address_as_endpoint(lab, mesh):
    c1, c2 = lab.contexts
    gw = lab.kjson(c1, "get", "svc", "-n", "istio-system", "istio-eastwestgateway")
    address = gw["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(lab.lab.clusters()[0].lb_cidr)
    svc = lab.kjson(c2, "get", "svc", "-n", "istio-system", "istiod")
    assert not svc["spec"].get("selector") and svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["spec"]
    assert {p["port"]: p.get("targetPort") for p in svc["spec"]["ports"]} == {15012: 15012, 443: 15017}
    slices = lab.kjson(c2, "get", "endpointslices", "-n", "istio-system", "-l", "kubernetes.io/service-name=istiod")
    assert [a for s in slices["items"] for e in s["endpoints"] for a in e["addresses"]] == [address]
    # The supervisor's kube-proxy forwarders for the remote's API server: ClusterIP:443 and :15012, to that address.
    forwards = {tuple(r["listen"]): tuple(r["target"]) for r in
                (json.loads(f.read_text()) for f in (lab.lab.home / "c2" / "kube-proxy").glob("*.json"))}
    ip = svc["spec"]["clusterIP"]
    assert forwards == {(ip, 443): (address, 15017), (ip, 15012): (address, 15012)}, forwards


def _deploy(lab, samples):
    """Istio's samples as the docs deploy them: helloworld Service everywhere, vN in cluster N, curl in each."""
    for i, ctx in enumerate(lab.contexts):
        lab.kubectl(ctx, "create", "namespace", SAMPLE_NS)
        lab.kubectl(ctx, "label", "namespace", SAMPLE_NS, "istio-injection=enabled")
        hello = f"{samples}/helloworld/helloworld.yaml"
        lab.kubectl(ctx, "apply", "-n", SAMPLE_NS, "-f", hello, "-l", "service=helloworld")
        lab.kubectl(ctx, "apply", "-n", SAMPLE_NS, "-f", hello, "-l", f"version=v{i + 1}")
        lab.kubectl(ctx, "apply", "-n", SAMPLE_NS, "-f", f"{samples}/curl/curl.yaml")


@pytest.fixture(scope="module")
def samples(lab, mesh):
    before = _gateway_clusters(lab, lab.contexts[0])
    started = time.monotonic()
    _deploy(lab, mesh["env"]["MESHLAB_ISTIO_SAMPLES"])
    for ctx in lab.contexts:
        for app in ("helloworld", "curl"):
            lab.kubectl(ctx, "wait", "-n", SAMPLE_NS, "--for=condition=Ready", "pod", "-l", f"app={app}",
                        "--timeout=120s", timeout=180)
    print(f"samples Ready in {time.monotonic() - started:.1f}s")
    return {"before": before}


def test_remote_pod_is_injected_through_the_primary_gateway(lab, samples):
    c1, c2 = lab.contexts
    pods = lab.kjson(c2, "get", "pods", "-n", SAMPLE_NS)["items"]
    assert len(pods) == 2
    for p in pods:
        # Created at all: the API server's webhook call (failurePolicy Fail) was answered by the primary's istiod.
        assert "sidecar.istio.io/status" in p["metadata"]["annotations"], p["metadata"]["name"]
        assert "istio-proxy" in [c["name"] for c in p["spec"]["containers"]]
    real = {p["pod"]: p for p in lab.lab.status()["real_pods"] if p["cluster"] == "c2"}
    assert all(real[f"{SAMPLE_NS}/{p['metadata']['name']}"]["ready"] for p in pods), real
    after = _gateway_clusters(lab, c1)
    webhook = "outbound|443||istiod.istio-system.svc.cluster.local"
    assert after[webhook] > samples["before"][webhook], (samples["before"][webhook], after[webhook])


def test_remote_sidecars_get_config_and_certificates_through_the_primary_gateway(lab, samples):
    c1, c2 = lab.contexts
    xds = "outbound|15012||istiod.istio-system.svc.cluster.local"
    # One connection per remote proxy (the remote's gateway and the two sample pods), and they stay up.
    assert _gateway_clusters(lab, c1)[xds] >= 3
    # The remote's sidecar holds a workload certificate of the mesh's CA, and its config names the other cluster.
    pod = lab.kjson(c2, "get", "pods", "-n", SAMPLE_NS, "-l", "app=curl")["items"][0]["metadata"]["name"]
    certs = json.loads(lab.kubectl(c2, "exec", "-n", SAMPLE_NS, pod, "-c", "istio-proxy", "--", "curl", "-s",
                                   "localhost:15000/certs").stdout)
    sans = [s.get("uri") for c in certs["certificates"] for cc in c["cert_chain"]
            for s in cc.get("subject_alt_names", [])]
    assert f"spiffe://cluster.local/ns/{SAMPLE_NS}/sa/curl" in sans, sans


def _curl(lab, ctx, n=20):
    out = lab.kubectl(ctx, "exec", "-n", SAMPLE_NS, "deploy/curl", "-c", "curl", "--", "sh", "-c",
                      f"for i in $(seq 1 {n}); do curl -sS --max-time 5 helloworld.{SAMPLE_NS}:5000/hello; done",
                      check=False)
    return collections.Counter(m.group(1) for m in HELLO.finditer(out.stdout))


def test_each_cluster_is_answered_by_both_versions(lab, samples):
    for ctx in lab.contexts:
        started = time.monotonic()
        counts = wait_for(f"curl from {ctx} answered by v1 and v2",
                          lambda c=ctx: (lambda r: r if r.get("v1") and r.get("v2") else None)(_curl(lab, c)),
                          timeout=90, interval=2)
        print(f"{ctx}: {dict(counts)} after {time.monotonic() - started:.1f}s")
        assert set(counts) == {"v1", "v2"}, counts


def _root_namespace_peers():
    """Remote addresses of the root namespace's TCP sockets (this process's namespace), from /proc/net/tcp."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        addr = line.split()[2].split(":")[0]
        peers.add(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return peers


def test_the_root_namespace_dials_no_load_balancer_address(lab, samples):
    outside = [p for p in _root_namespace_peers() if not ipaddress.ip_address(p).is_loopback
               and p != "0.0.0.0"]
    assert not [p for p in outside if ipaddress.ip_address(p) in ipaddress.ip_network("198.18.0.0/15")], outside
    # The forwarders listen on the remote's ClusterIP only (127/8), in the root namespace.
    recs = kubeproxy.records(lab.lab.home)
    listening = procs.listening_ports([r["pid"] for r in recs])
    assert listening and all(ipaddress.ip_address(a).is_loopback for a, dummy in listening), listening


def test_forwarders_go_with_the_service(lab, samples):
    c2 = lab.contexts[1]
    recs = kubeproxy.records(lab.lab.home)
    assert recs and all(procs.alive(r) for r in recs)
    lab.kubectl(c2, "delete", "svc", "-n", "istio-system", "istiod")
    wait_for("kube-proxy forwarders stopped", lambda: not any(procs.alive(r) for r in recs)
             and not kubeproxy.records(lab.lab.home), timeout=30)
