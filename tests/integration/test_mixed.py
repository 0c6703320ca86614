"""A mixed topology in one inventory: two primaries on two networks, and a remote on the second network controlled
by the second primary. It converges, verifies, and a re-run writes nothing."""
import json
import re

from conftest import run


def test_mixed_topology_converges_and_verifies(lab3, tmp_path):
    inv = tmp_path / "inventory.yml"
    lab3.inventory("mixed", inv, tmp_path / "ca")
    proc = lab3.playbook("primary-remote.yml", inv, check=True)
    # The playbook's verify step already required each primary's istiod to report both other clusters synced
    # and the other network's gateway; its summaries show it.
    out = " ".join(proc.stdout.split())
    views = {frozenset(m.split()) for m in re.findall(r"istiod-\S+: clusters ([^;]+);", out)}
    assert views == {frozenset({"cluster1=synced(local)", "cluster2=synced", "cluster3=synced"}),
                     frozenset({"cluster2=synced(local)", "cluster1=synced", "cluster3=synced"})}, proc.stdout[-3000:]
    c1, c2, c3 = lab3.contexts()
    ns3 = json.loads(run("kubectl", "--context", c3, "get", "ns", "istio-system", "-o", "json", env=lab3.env).stdout)
    assert ns3["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"] == "cluster2"
    assert ns3["metadata"]["labels"]["topology.istio.io/network"] == "network2"
    deployments = run("kubectl", "--context", c3, "-n", "istio-system", "get", "deploy", "-o", "name", env=lab3.env).stdout
    assert "istiod" not in deployments, "a remote runs no istiod"
    for ctx, held in ((c1, {"cluster2", "cluster3"}), (c2, {"cluster1", "cluster3"}), (c3, set())):
        secrets = json.loads(run("kubectl", "--context", ctx, "-n", "istio-system", "get", "secrets", "-l", "istio/multiCluster=true",
                                 "-o", "json", env=lab3.env).stdout)["items"]
        assert {k for s in secrets for k in s["data"]} == held, ctx

    mark = lab3.mark()
    again = lab3.playbook("primary-remote.yml", inv, check=True)
    assert all(n == 0 for n in lab3.writes(mark).values())
    assert "changed=0" in again.stdout and "changed=1" not in again.stdout
