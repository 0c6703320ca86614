"""A mesh the collection built carries requests: Istio 1.30.3 multi-primary on one network, installed with Helm by
multi-primary.yml from that release's charts, real Envoy sidecars (the lab's real data plane). Istio's "Verify the
installation" by hand: curl from each cluster is answered by helloworld v1 (cluster1) and v2 (cluster2), pod to pod
with mTLS (the server sees the client's SPIFFE identity). The release's istioctl (remote-clusters, proxy-status) and
the collection's report see the same proxies."""
import json

import pytest
from meshlab import lab as meshlab_lab, paths, procs

import traffic
from conftest import wait_until

RELEASE = "1.30.3"


@pytest.fixture(scope="module")
def mesh(real_lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("traffic1")
    inv = d / "inventory.yml"
    real_lab.meshlab("inventory", "--model", "multi-primary", "--istio", RELEASE, "--ca-dir", str(d / "ca"),
                     "-o", str(inv))
    proc = real_lab.playbook("multi-primary.yml", inv)
    assert proc.returncode == 0, proc.stdout[-6000:]
    real_lab.inventory_path = inv
    traffic.deploy(real_lab, paths.samples_dir(RELEASE))
    return real_lab


def test_every_cluster_is_answered_by_both_versions(mesh):
    for ctx in mesh.contexts():
        counts = traffic.answered_by_both(mesh, ctx)
        assert set(counts) == {"v1", "v2"}, counts


def test_sidecars_run_the_release(mesh):
    for ctx in mesh.contexts():
        versions = traffic.proxy_versions(mesh, ctx)
        assert versions and set(versions.values()) == {RELEASE}, versions


def test_server_sees_the_client_spiffe_identity(mesh):
    ids = set()
    for ctx in mesh.contexts():
        ids |= set(traffic.server_saw_client_identity(mesh, ctx))
    assert "spiffe://cluster.local/ns/sample/sa/curl" in ids, ids


def test_a_proxy_that_dies_is_restarted_and_serves_again(mesh):
    c1 = mesh.contexts()[0]
    pods = json.loads(mesh.meshlab("status", "--json"))["real_pods"]
    hello = [p for p in pods if p["cluster"] == "c1" and "/helloworld-" in p["pod"]][0]
    rec = [r for r in meshlab_lab.Lab(mesh.home).real_pods() if r["cluster"] == "c1" and r["name"] in hello["pod"]][0]
    procs.kill(rec["procs"]["istio-proxy"])   # as a crash: SIGKILL, no drain

    def restarted():
        now = [p for p in json.loads(mesh.meshlab("status", "--json"))["real_pods"] if p["pod"] == hello["pod"]]
        return now and now[0]["restarts"] == 1 and now[0]["ready"]
    wait_until(restarted, 60, f"{hello['pod']} restarted once and Ready again")
    ready = traffic.kubectl(mesh, c1, "get", "pod", "-n", "sample", hello["pod"].split("/")[1], "-o",
                            "jsonpath={.status.containerStatuses[?(@.name=='istio-proxy')].restartCount}").stdout
    assert ready == "1"
    counts = traffic.answered_by_both(mesh, c1)
    assert set(counts) == {"v1", "v2"}, counts


def test_istioctl_of_the_release_sees_the_mesh(mesh):
    """What a user runs against a real cluster: istioctl remote-clusters and proxy-status, of the matching version."""
    istioctl = str(paths.istio_binary("istioctl", RELEASE))
    c1, c2 = mesh.contexts()
    clusters = traffic.run_ok(mesh, [istioctl, "--context", c1, "remote-clusters"])
    assert [line.split()[0] for line in clusters.splitlines()[1:]] == ["cluster1", "cluster2"], clusters
    assert all(" synced " in line for line in clusters.splitlines()[1:]), clusters
    status = traffic.run_ok(mesh, [istioctl, "--context", c1, "proxy-status"])
    rows = [line.split() for line in status.splitlines()[1:]]
    # The docs' samples in both clusters (served by each cluster's own istiod: multi-primary), of this release.
    assert {r[1] for r in rows if r[0].startswith(("curl-", "helloworld-"))} == {"cluster1"}, status
    assert all(RELEASE in r for r in rows), status


def test_the_report_lists_each_clusters_proxies_and_their_istiod(mesh, tmp_path):
    proc = mesh.playbook("report.yml", mesh.inventory_path, "-e", f"istio_report_dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-4000:]
    report = json.loads((tmp_path / "mesh-report.json").read_text())
    for cluster in report["clusters"]:
        names = [p["proxy"] for p in cluster["proxies"]]
        assert any(n.startswith("curl-") and n.endswith(".sample") for n in names), (cluster["cluster_id"], names)
        assert any(n.startswith("helloworld-") for n in names), (cluster["cluster_id"], names)
        assert {p["istiod"].split("/")[0] for p in cluster["proxies"]} == {cluster["cluster_id"]}, cluster["proxies"]
        assert {p["version"] for p in cluster["proxies"]} == {RELEASE}
    page = (tmp_path / "index.html").read_text()
    assert "proxies (version; istiod; xDS)" in page
