"""playbooks/uninstall.yml on the lab, one model after the other on the same two clusters: every object of every
cluster is listed before each install (the first time: the empty lab); each model is installed, uninstalled in check
mode (writes nothing, predicts the real run), uninstalled with istio_purge_crds (the clusters hold exactly the objects
they held before, no istio/multiCluster Secret), and uninstalled again (changes and writes nothing). Without the purge
only Istio's CRDs (and the APIService registrations of their groups) stay, and a system namespace holding an object
that is not Istio's stays, with that object. Each install's `changes` report lists exactly the objects the audit logs
say it wrote."""
import json
import re
import time

import pytest
import yaml

import changes_report
import cluster_snapshot
from conftest import REPO, changed_tasks, run

# (lab inventory model, install playbook, extra arguments of every playbook run)
MODELS = {
    "multi-primary-multi-network": ("multi-primary.yml", ()),
    "primary-remote-multi-network": ("primary-remote.yml", ()),
    # The uninstall finds out itself that the mesh is ambient (no istio_model).
    "ambient": ("ambient.yml", ()),
}
PURGE = ("-e", "istio_purge_crds=true")
USER_OBJECT = "not-istios"


def multicluster_secrets(lab):
    return dict((c, run("kubectl", "--context", c, "get", "secrets", "-A", "-l", "istio/multiCluster", "-o", "name",
                        env=lab.env).stdout.split()) for c in lab.contexts())


class Flows:
    """Each flow runs once, on demand; the tests read its results."""

    def __init__(self, lab, tmp):
        self.lab, self.tmp, self.done = lab, tmp, {}
        self.contexts = lab.contexts()

    def snapshot(self):
        """Every object now, taken before a flow's install: what its uninstall must come back to. The first is the
        empty lab; each later flow starts from what the previous one left (so one flow's leftovers fail that flow only)."""
        return cluster_snapshot.take(self.contexts, env=self.lab.env)

    def snapshot_diff(self, before):
        return cluster_snapshot.compare(before, cluster_snapshot.take(self.contexts, env=self.lab.env))

    def playbook(self, name, inv, *extra):
        mark = self.lab.mark()
        started = time.monotonic()
        proc = self.lab.playbook(name, inv, *extra)
        return dict(proc=proc, seconds=round(time.monotonic() - started, 1), writes=self.lab.writes(mark),
                    changed=changed_tasks(proc.stdout), mark=mark)

    def install(self, playbook, inv, *extra):
        """The install run, with its change report and what the audit logs say it wrote (read before the uninstall:
        the Helm releases' manifests are part of it)."""
        out = self.playbook(playbook, inv, *extra)
        if out["proc"].returncode == 0:
            hosts = changes_report.hosts_of(yaml.safe_load(inv.read_text()))
            out["actual"], out["problems"] = changes_report.actual_objects(
                self.lab, changes_report.writes_since(self.lab, out["mark"]), hosts)
            out["reported"] = changes_report.report(out["proc"].stdout)
        return out

    def inventory(self, model, name=None):
        d = self.tmp / (name or model)
        d.mkdir(exist_ok=True)
        inv = d / "inventory.yml"
        self.lab.inventory(model, inv, d / "ca")
        return inv

    def purge(self, model):
        if model not in self.done:
            playbook, extra = MODELS[model]
            if not (REPO / "playbooks" / playbook).exists():
                pytest.skip("playbooks/%s does not exist (yet): nothing installs a %s mesh to uninstall" % (playbook, model))
            inv = self.inventory(model)
            before = self.snapshot()
            out = {"install": self.install(playbook, inv, *extra)}
            out["check"] = self.playbook("uninstall.yml", inv, "--check", "--diff", *extra, *PURGE)
            out["uninstall"] = self.playbook("uninstall.yml", inv, *extra, *PURGE)
            out["diff"] = self.snapshot_diff(before)
            out["secrets"] = multicluster_secrets(self.lab)
            out["again"] = self.playbook("uninstall.yml", inv, *extra, *PURGE)
            timings = ["%s %ss (%s writes)" % (k, out[k]["seconds"], sum(out[k]["writes"].values()))
                       for k in ("install", "check", "uninstall", "again")]
            print("\n%s: %s" % (model, ", ".join(timings)))
            self.done[model] = out
        return self.done[model]

    def keep_crds(self):
        """Uninstall without the purge, with an object of the user's in the system namespace of the first cluster;
        then without it, with the purge."""
        if "keep" not in self.done:
            model = "multi-primary-multi-network"
            inv = self.inventory(model, "keep-crds")
            first = self.contexts[0]
            before = self.snapshot()
            out = {"install": self.playbook(MODELS[model][0], inv)}
            run("kubectl", "--context", first, "-n", "istio-system", "create", "configmap", USER_OBJECT, env=self.lab.env)
            out["uninstall"] = self.playbook("uninstall.yml", inv)
            out["diff"] = self.snapshot_diff(before)
            out["namespace"] = json.loads(run("kubectl", "--context", first, "get", "namespace", "istio-system", "-o", "json",
                                              env=self.lab.env).stdout)
            run("kubectl", "--context", first, "-n", "istio-system", "delete", "configmap", USER_OBJECT, env=self.lab.env)
            out["purge"] = self.playbook("uninstall.yml", inv, *PURGE)
            out["purged_diff"] = self.snapshot_diff(before)
            self.done["keep"] = out
        return self.done["keep"]


@pytest.fixture(scope="module")
def flows(lab, tmp_path_factory):
    return Flows(lab, tmp_path_factory.mktemp("uninstall"))


def ok(result):
    proc = result["proc"]
    assert proc.returncode == 0, "%s\n%s" % (proc.stdout[-8000:], proc.stderr[-2000:])


@pytest.mark.parametrize("model", list(MODELS))
def test_install(flows, model):
    ok(flows.purge(model)["install"])


@pytest.mark.parametrize("model", list(MODELS))
def test_install_reports_exactly_what_it_wrote(flows, model):
    """The changes report of every model's playbook; primary-remote installs the primaries' control plane and gateway,
    then the remote's, with the same roles: both are reported."""
    install = flows.purge(model)["install"]
    ok(install)
    assert not install["problems"], install["problems"]
    assert install["reported"] == install["actual"], (install["reported"], install["actual"])
    for host, objs in install["reported"].items():
        assert "install HelmRelease istio-system/istiod" in objs, (host, objs)
        if model != "ambient":
            assert "install HelmRelease istio-system/istio-eastwestgateway" in objs, (host, objs)


@pytest.mark.parametrize("model", list(MODELS))
def test_check_mode_writes_nothing_and_predicts_the_uninstall(flows, model):
    out = flows.purge(model)
    ok(out["check"])
    assert sum(out["check"]["writes"].values()) == 0, out["check"]["writes"]
    assert out["check"]["changed"] == out["uninstall"]["changed"]


@pytest.mark.parametrize("model", list(MODELS))
def test_uninstall_leaves_the_clusters_as_they_were(flows, model):
    out = flows.purge(model)
    ok(out["uninstall"])
    assert out["diff"] == {}, "left over (added) or lost (removed) by install + uninstall:\n" + json.dumps(out["diff"], indent=1)
    assert out["secrets"] == dict((c, []) for c in flows.contexts), out["secrets"]


@pytest.mark.parametrize("model", list(MODELS))
def test_second_uninstall_changes_and_writes_nothing(flows, model):
    again = flows.purge(model)["again"]
    ok(again)
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_without_purge_only_the_crds_and_what_is_not_istios_stay(flows):
    out = flows.keep_crds()
    ok(out["install"])
    ok(out["uninstall"])
    istio_group = re.compile(r"^(CustomResourceDefinition\.apiextensions\.k8s\.io -/[a-z0-9]+\.|APIService\.apiregistration\.k8s\.io -/v[a-z0-9]+\.)"
                             r"([a-z0-9-]+\.)*istio\.io$")
    # The first cluster's namespace stays for the user's ConfigMap, with what Kubernetes puts in every namespace.
    kept = {"Namespace -/istio-system", "ConfigMap istio-system/" + USER_OBJECT, "ConfigMap istio-system/kube-root-ca.crt",
            "ServiceAccount istio-system/default"}
    for context in flows.contexts:
        diff = out["diff"].get(context, {"added": [], "removed": []})
        assert diff["removed"] == [], diff["removed"]
        assert [name for name in diff["added"] if name.startswith("CustomResourceDefinition")], "the CRDs must stay without istio_purge_crds"
        rest = set(name for name in diff["added"] if not istio_group.match(name))
        assert rest == (kept if context == flows.contexts[0] else set()), sorted(rest)
    said = " ".join((out["uninstall"]["proc"].stdout + out["uninstall"]["proc"].stderr).split())
    assert "namespace istio-system kept: it holds objects that are not Istio's: ConfigMap istio-system/" + USER_OBJECT in said, said[-4000:]
    assert "topology.istio.io/network" not in (out["namespace"]["metadata"].get("labels") or {})
    ok(out["purge"])
    assert out["purged_diff"] == {}, json.dumps(out["purged_diff"], indent=1)
