"""playbooks/add-cluster.yml and playbooks/decommission.yml on a three-cluster lab, multi-primary on three networks
(test_add_decommission_ambient.py runs the same tests on the ambient model).

cluster1 and cluster2 form the mesh (an inventory without cluster3); cluster3 is then written into the inventory and
added: in check mode nothing is written; for real, the existing clusters get exactly one write each, cluster3's remote
secret, and every istiod sees every other cluster synced and every other network's gateway. Then cluster3 is
decommissioned (with istio_purge_crds): the others get exactly one write each, the deletion of its secret, no istiod
lists it any more, and cluster3 holds exactly the objects it held before anything was installed."""
import copy
import json
import re
import time

import pytest
import yaml

import cluster_snapshot
from conftest import run

MODEL = "multi-primary-multi-network"
NEW = "cluster3"
# Per model: the lab inventory, the model's playbook, and the east-west port the other networks are reached on.
MODELS = {"multi-primary-multi-network": ("multi-primary.yml", 15443), "ambient": ("ambient.yml", 15008)}


def writes_by_cluster(lab, since):
    """{context: ['verb uri', ...]} of the admin's writes since the mark (meshlab writes -v)."""
    out = dict((c, []) for c in lab.contexts())
    for line in run("meshlab", "writes", "--since", since, "-v", env=lab.env).stdout.splitlines():
        if line.startswith("  "):
            context, verb, dummy, uri = line.split(None, 3)
            out[context].append("%s %s" % (verb, uri.split("?")[0]))
    return out


class Flow:
    def __init__(self, lab, tmp, model=MODEL):
        self.lab = lab
        self.playbook, self.gateway_port = MODELS[model]
        full = lab.inventory(model, tmp / "full.yml", tmp / "ca")
        self.contexts = dict((h, v["kube_context"]) for h, v in full["all"]["children"]["istio_primary"]["hosts"].items())
        self.full, self.small, self.unnamed = tmp / "full.yml", tmp / "small.yml", tmp / "model-not-named.yml"
        if model == "ambient":
            # add-cluster and decommission plan the model istio_model names (multi_primary when unset), as a user
            # of an ambient mesh sets it; the inventory without it is kept to show the refusal.
            self.unnamed.write_text(yaml.safe_dump(full))
            full["all"]["vars"]["istio_model"] = "ambient"
            self.full.write_text(yaml.safe_dump(full))
        small = copy.deepcopy(full)
        del small["all"]["children"]["istio_primary"]["hosts"][NEW]
        self.small.write_text(yaml.safe_dump(small))
        self.runs = {}

    def run(self, name, playbook, inventory, *extra):
        mark = self.lab.mark()
        started = time.monotonic()
        proc = self.lab.playbook(playbook, inventory, *extra)
        out = dict(proc=proc, seconds=round(time.monotonic() - started, 1), writes=writes_by_cluster(self.lab, mark))
        print("\n%s: %ss, writes %s" % (name, out["seconds"], dict((c, len(w)) for c, w in out["writes"].items())))
        self.runs[name] = out
        return out

    def snapshot(self, host):
        return cluster_snapshot.take([self.contexts[host]], env=self.lab.env)


def summaries(stdout):
    """The lines the verify steps print for each istiod ('istiod-<pod>: clusters ...; gateways ...'), from the default
    callback's YAML result format (a quoted string, folded over lines)."""
    return re.findall(r"'(istiod-\S+: clusters [^']*)'", " ".join(stdout.split()))


def ok(out):
    proc = out["proc"]
    assert proc.returncode == 0, "%s\n%s" % (proc.stdout[-8000:], proc.stderr[-2000:])


# Each step runs once, when the first test needs it (one playbook run or two per test, within the test timeout).
STEPS = {
    "add, check mode": ("add-cluster.yml", "--check", "--diff"),
    "add": ("add-cluster.yml",),
    "decommission, check mode": ("decommission.yml", "-e", "istio_purge_crds=true", "--check", "--diff"),
    "decommission": ("decommission.yml", "-e", "istio_purge_crds=true"),
}


def start(lab, tmp, model):
    """cluster1 and cluster2 converged as a mesh of the model; cluster3 untouched (its objects recorded)."""
    f = Flow(lab, tmp, model)
    f.pristine = f.snapshot(NEW)
    ok(f.run("converge cluster1+cluster2", f.playbook, f.small))
    return f


@pytest.fixture(scope="module")
def flow(lab3, tmp_path_factory):
    return start(lab3, tmp_path_factory.mktemp("add"), MODEL)


def step(flow, name):
    """The steps in their order, each once; returns the named one's result."""
    for each in STEPS:
        if each not in flow.runs:
            playbook, *extra = STEPS[each]
            flow.run(each, playbook, flow.full, "-e", "istio_cluster=" + NEW, *extra)
            if each == "decommission":
                flow.after = flow.snapshot(NEW)
                flow.secrets = dict((c, run("kubectl", "--context", c, "get", "secrets", "-A", "-l", "istio/multiCluster", "-o", "name",
                                            env=flow.lab.env).stdout.split()) for c in flow.lab.contexts())
        if each == name:
            return flow.runs[name]
    raise KeyError(name)


def test_cluster_must_name_a_host_of_the_inventory(lab3, flow):
    mark = lab3.mark()
    for extra in (("-e", "istio_cluster=cluster9"), ()):
        for playbook in ("add-cluster.yml", "decommission.yml"):
            proc = lab3.playbook(playbook, flow.full, *extra)
            said = " ".join(proc.stdout.split())
            assert proc.returncode != 0 and "istio_cluster:" in said, said[-2000:]
            if extra:
                assert "host cluster9: istio_cluster: 'cluster9' is not a host of the mesh" in said, said[-2000:]
    assert all(n == 0 for n in lab3.writes(mark).values())


def test_add_in_check_mode_writes_nothing(flow):
    out = step(flow, "add, check mode")
    ok(out)
    assert out["writes"] == dict((c, []) for c in out["writes"]), out["writes"]


def test_add_writes_only_its_remote_secret_on_the_existing_clusters(flow):
    out = step(flow, "add")
    ok(out)
    for host in ("cluster1", "cluster2"):
        assert out["writes"][flow.contexts[host]] == ["create /api/v1/namespaces/istio-system/secrets"], (host, out["writes"])
    assert len(out["writes"][flow.contexts[NEW]]) > 10, "cluster3 got its own install"


def test_after_the_add_every_istiod_sees_every_cluster_and_gateway(flow):
    stdout = step(flow, "add")["proc"].stdout
    seen = summaries(stdout)
    assert len(seen) == 3, stdout[-3000:]
    for line in seen:
        for cid in ("cluster1", "cluster2", NEW):
            assert re.search(r"\b%s=synced" % cid, line), line
        for net in ("network1", "network2", "network3"):
            own = re.search(r"clusters (\S+)=synced\(local\)", line).group(1)
            if net != "network" + own[-1]:
                assert re.search(r"\b%s=\S+:%d" % (net, flow.gateway_port), line), line


def test_decommission_in_check_mode_writes_nothing(flow):
    out = step(flow, "decommission, check mode")
    ok(out)
    assert out["writes"] == dict((c, []) for c in out["writes"]), out["writes"]


def test_decommission_removes_only_its_secret_from_the_others(flow):
    out = step(flow, "decommission")
    ok(out)
    for host in ("cluster1", "cluster2"):
        assert out["writes"][flow.contexts[host]] == ["delete /api/v1/namespaces/istio-system/secrets/istio-remote-secret-" + NEW], (
            host, out["writes"])
    for context, names in flow.secrets.items():
        assert not [n for n in names if n.endswith("-" + NEW)], (context, names)
        if context == flow.contexts[NEW]:
            assert names == [], names


def test_no_other_istiod_lists_the_decommissioned_cluster(flow):
    stdout = step(flow, "decommission")["proc"].stdout
    seen = summaries(stdout.split("Every other istiod reports")[1])
    assert len(seen) == 2, stdout[-3000:]
    for line in seen:
        clusters = line.split(";")[0]
        assert NEW not in clusters and re.search(r"\bcluster1=synced", clusters) and re.search(r"\bcluster2=synced", clusters), line


def test_decommissioned_cluster_holds_what_it_held_before_the_install(flow):
    step(flow, "decommission")
    assert cluster_snapshot.compare(flow.pristine, flow.after) == {}, json.dumps(cluster_snapshot.compare(flow.pristine, flow.after), indent=1)
