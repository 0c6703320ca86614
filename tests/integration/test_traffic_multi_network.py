"""A two-network mesh the collection built carries requests across networks only through the east-west gateways:
Istio 1.30.3 multi-primary on two networks (multi-primary.yml, Helm, that release's charts), real Envoy sidecars
and gateways. curl from each cluster is answered by helloworld v1 (network1) and v2 (network2); the requests to the
other network pass its gateway's 15443 listener; a pod IP of the other network is not reachable directly."""
import json

import pytest
from meshlab import paths

import traffic

RELEASE = "1.30.3"


@pytest.fixture(scope="module")
def mesh(real_lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("traffic2")
    inv = d / "inventory.yml"
    real_lab.meshlab("inventory", "--model", "multi-primary-multi-network", "--istio", RELEASE, "--ca-dir",
                     str(d / "ca"), "-o", str(inv))
    proc = real_lab.playbook("multi-primary.yml", inv)
    assert proc.returncode == 0, proc.stdout[-6000:]
    traffic.deploy(real_lab, paths.samples_dir(RELEASE))
    return real_lab


def test_every_cluster_is_answered_by_both_versions_through_the_gateways(mesh):
    c1, c2 = mesh.contexts()
    before = {ctx: traffic.gateway_connections(mesh, ctx) for ctx in (c1, c2)}
    for ctx in (c1, c2):
        counts = traffic.answered_by_both(mesh, ctx)
        assert set(counts) == {"v1", "v2"}, counts
    after = {ctx: traffic.gateway_connections(mesh, ctx) for ctx in (c1, c2)}
    # Each cluster's requests to the other version entered the other network through its gateway.
    assert after[c1] > before[c1] and after[c2] > before[c2], (before, after)


def test_pod_ip_of_the_other_network_is_unreachable(mesh):
    c1, c2 = mesh.contexts()
    pod = json.loads(traffic.kubectl(mesh, c1, "get", "pods", "-n", "sample", "-l", "app=helloworld", "-o",
                                     "json").stdout)["items"][0]
    out = traffic.kubectl(mesh, c2, "exec", "-n", "sample", "deploy/curl", "-c", "curl", "--", "curl", "-sS",
                          "--max-time", "3", f"http://{pod['status']['podIP']}:5000/hello", check=False)
    assert "Hello version" not in out.stdout, out.stdout


def test_server_sees_the_client_spiffe_identity_across_networks(mesh):
    ids = set()
    for ctx in mesh.contexts():
        ids |= set(traffic.server_saw_client_identity(mesh, ctx))
    assert "spiffe://cluster.local/ns/sample/sa/curl" in ids, ids
