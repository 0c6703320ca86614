"""A mixed topology in one inventory: two primaries on two networks, and a remote on the second network controlled
by the second primary. It converges, verifies, and a re-run writes nothing. The `changes` report of each run lists
exactly the objects the run wrote per the audit logs: the primaries' control planes and gateways (imported before the
remote's) as well as the remote's control plane; nothing on the re-run."""
import json
import re

import changes_report
from conftest import run


def test_mixed_topology_converges_and_verifies(lab3, tmp_path):
    inv = tmp_path / "inventory.yml"
    hosts = changes_report.hosts_of(lab3.inventory("mixed", inv, tmp_path / "ca"))
    mark = lab3.mark()
    proc = lab3.playbook("primary-remote.yml", inv, check=True)
    writes = changes_report.writes_since(lab3, mark)
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

    # The report of the converge is what the audit logs recorded, object by object.
    actual, problems = changes_report.actual_objects(lab3, writes, hosts)
    assert not problems, problems
    reported = changes_report.report(proc.stdout)
    assert reported == actual, (reported, actual)
    installed = {"install HelmRelease istio-system/istio-base", "install HelmRelease istio-system/istiod"}
    # The primaries' charts (their imports' results are registered over by the remote's) and the remote's.
    for host in ("cluster1", "cluster2", "cluster3"):
        assert installed <= reported[host], (host, reported[host])
    for host in ("cluster1", "cluster2"):
        assert "install HelmRelease istio-system/istio-eastwestgateway" in reported[host], (host, reported[host])
    assert "create Secret istio-system/istio-remote-secret-cluster3" in reported["cluster2"], reported["cluster2"]

    mark = lab3.mark()
    again = lab3.playbook("primary-remote.yml", inv, check=True)
    assert all(len(w) == 0 for w in changes_report.writes_since(lab3, mark).values())
    assert "changed=0" in again.stdout and "changed=1" not in again.stdout
    assert changes_report.report(again.stdout) == {"cluster1": set(), "cluster2": set(), "cluster3": set()}
