"""istio_install_method: istioctl on a fresh lab: check mode writes nothing and predicts the converge, the converge
verifies (every istiod sees the other cluster synced and the other network's gateway), a re-run changes and
writes nothing (istioctl install is not run again). Then cluster1's control plane is removed by hand with istioctl
(its install record, the ConfigMap, stays): uninstall.yml still succeeds and leaves no record behind."""
import json

import pytest
import yaml

import changes_report
from conftest import changed_tasks, run

MODEL = "multi-primary-multi-network"
TASK = "meshops.istio.control_plane : Install the control plane with istioctl (IstioOperator; only when it changed)"


@pytest.fixture(scope="module")
def runs(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("istioctl")
    inv_path = d / "inventory.yml"
    inv = lab.inventory(MODEL, inv_path, d / "ca")
    inv["all"]["vars"]["istio_install_method"] = "istioctl"
    inv_path.write_text(yaml.safe_dump(inv))
    out = {}
    for name, extra in (("check", ("--check", "--diff")), ("converge", ()), ("again", ())):
        mark = lab.mark()
        proc = lab.playbook("multi-primary.yml", inv_path, *extra, check=False)
        out[name] = dict(proc=proc, writes=lab.writes(mark), changed=changed_tasks(proc.stdout))
        if name == "converge":  # while its Helm releases are there to read
            out[name]["actual"] = changes_report.actual_objects(lab, changes_report.writes_since(lab, mark), changes_report.hosts_of(inv))
    out["installed"] = {c: dict(
        names=run("kubectl", "--context", c, "-n", "istio-system", "get", "configmaps,deployments", "-o", "name",
                  env=lab.env).stdout.split(),
        releases=json.loads(run("helm", "--kube-context", c, "list", "-n", "istio-system", "-o", "json",
                                env=lab.env).stdout)) for c in lab.contexts()}
    first = lab.contexts()[0]
    out["by_hand"] = run("istioctl", "uninstall", "-y", "--revision", "default", "--context", first, env=lab.env,
                         check=False)
    out["uninstall"] = dict(proc=lab.playbook("uninstall.yml", inv_path, "-v", check=False))
    out["left"] = {c: run("kubectl", "--context", c, "-n", "istio-system", "get", "configmaps", "-o", "name",
                          env=lab.env, check=False).stdout.split() for c in lab.contexts()}
    return out


def test_converge_installs_with_istioctl_and_verifies(lab, runs):
    proc = runs["converge"]["proc"]
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert (("cluster1", TASK) in runs["converge"]["changed"] and ("cluster2", TASK) in runs["converge"]["changed"])
    assert "synced" in proc.stdout and "failed=0" in proc.stdout
    assert sorted(runs["installed"]) == sorted(lab.contexts())
    for context, found in runs["installed"].items():
        names = found["names"]
        assert "configmap/meshops-istio-install" in names and "deployment.apps/istiod" in names
        assert "deployment.apps/istio-ingressgateway" not in names, "control plane only, as with Helm"
        assert sorted(r["name"] for r in found["releases"]) == ["istio-eastwestgateway"], \
            "istiod and base are not Helm releases"


def test_rerun_changes_and_writes_nothing(runs):
    again = runs["again"]
    assert again["proc"].returncode == 0, again["proc"].stdout[-8000:]
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_the_report_lists_the_istioctl_install_and_equals_the_audit_logs(runs):
    converge, check = (changes_report.report(runs[step]["proc"].stdout) for step in ("converge", "check"))
    for host in ("cluster1", "cluster2"):
        assert "install IstioOperator istio-system/default" in converge[host], converge[host]
        assert "create ConfigMap istio-system/meshops-istio-install" in converge[host], converge[host]
    actual, problems = runs["converge"]["actual"]
    assert problems == []
    assert converge == actual, "reported %s, audit logs %s" % (converge, actual)
    assert check == converge, "check mode predicts the report"
    assert changes_report.report(runs["again"]["proc"].stdout) == {"cluster1": set(), "cluster2": set()}


def test_check_mode_writes_nothing_and_predicts_the_converge(runs):
    check = runs["check"]
    assert check["proc"].returncode == 0, check["proc"].stdout[-8000:]
    assert all(n == 0 for n in check["writes"].values()), check["writes"]
    assert check["changed"] == runs["converge"]["changed"]
    assert "istioNamespace: istio-system" in check["proc"].stdout, "the diff shows the IstioOperator"


def test_uninstall_after_the_control_plane_was_removed_by_hand(runs):
    by_hand = runs["by_hand"]
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    proc = runs["uninstall"]["proc"]
    assert proc.returncode == 0, proc.stdout[-8000:]
    # cluster1: istioctl found nothing of revision default, so only the install record went; cluster2 uninstalled.
    assert "already_gone: true" in proc.stdout and "already_gone: false" in proc.stdout, proc.stdout[-8000:]
    for context, names in runs["left"].items():
        assert "configmap/meshops-istio-install" not in names, (context, names)
