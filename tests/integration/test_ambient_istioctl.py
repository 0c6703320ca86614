"""An ambient mesh with istio_install_method: istioctl, on one fresh lab: istiod, istio-cni and ztunnel are components of
one IstioOperator (no Helm release at all). Check mode writes nothing and predicts the converge; the converge verifies
(every istiod sees the other cluster synced, the east-west Gateway of every network is Programmed, ztunnel and
istio-cni are ready and ztunnel carries the cluster's ID and network); the node agents' environment is what the Helm
method's charts give with the same planned values (except for an explained list); a re-run changes and writes
nothing; the uninstall (purge) returns every cluster to the objects it held before the install. Then, on the same
lab, with the second cluster serving OpenShift's API groups: its node agents run in kube-system, verify finds them
there, and the uninstall again leaves both clusters as they were."""
import json
import subprocess
import sys

import pytest
import yaml

import cluster_snapshot
from conftest import REPO, changed_tasks, run

sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
import topology  # noqa: E402  (pure Python: the plan the playbooks compute, for the Helm method's values)

MODEL = "ambient"
PURGE = ("-e", "istio_purge_crds=true")
ISTIOCTL_TASK = "meshops.istio.control_plane : Install the control plane with istioctl (IstioOperator; only when it changed)"
# Four playbook runs and three snapshots in one module fixture on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2700)

# DaemonSet name -> (chart directory under istio_charts, Helm release, planned values key).
NODE_AGENTS = {"ztunnel": ("ztunnel", "ztunnel", "ztunnel"), "istio-cni-node": ("istio-cni", "istio-cni", "cni")}
# Environment variables only the istioctl install gives a node agent (DaemonSet -> name -> reason).
ONLY_ISTIOCTL_ENV = {
    "ztunnel": {
        # istioctl renders every component with the IstioOperator's profile (ambient), whose
        # meshConfig.defaultConfig.proxyMetadata the ztunnel chart turns into env; the Helm method installs the ztunnel
        # chart without a profile, as Istio's Helm guide does. ztunnel speaks HBONE either way.
        "ISTIO_META_ENABLE_HBONE": "istioctl applies the ambient profile's proxyMetadata to ztunnel",
    },
}


def plain_env(daemonset):
    """{container: {name: value}} of the plain (value, not valueFrom) env entries."""
    return dict((c["name"], dict((e["name"], e["value"]) for e in c.get("env") or [] if "value" in e))
                for c in daemonset["spec"]["template"]["spec"]["containers"])


def planned(inv):
    """The plan the playbooks compute from this inventory (the same pure function, no cluster contacted)."""
    common = inv["all"]["vars"]
    groups, hosts = {}, {}
    for group, body in inv["all"]["children"].items():
        groups[group] = sorted(body.get("hosts") or {})
        for name, hostvars in (body.get("hosts") or {}).items():
            hosts[name] = dict(common, **(hostvars or {}))
    return topology.plan_mesh(hosts, groups, MODEL)


def helm_env(inv, cluster, lab):
    """The node agents' env as the Helm method installs them: the charts rendered with the planned values."""
    install = cluster["install"]
    out = {}
    for ds_name, (chart, release, key) in NODE_AGENTS.items():
        cmd = [inv["all"]["vars"]["istio_helm_binary"], "template", release, "%s/%s" % (inv["all"]["vars"]["istio_charts"], chart),
               "--namespace", install["node_namespace"], "-f", "-"]
        proc = subprocess.run(cmd, input=json.dumps(install[key]), capture_output=True, text=True, env=lab.env, check=False)
        assert proc.returncode == 0, "%s: %s" % (" ".join(cmd), proc.stderr[-2000:])
        rendered = proc.stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "DaemonSet" and d["metadata"]["name"] == ds_name]
        assert len(docs) == 1, "helm template %s: no DaemonSet %s" % (chart, ds_name)
        out[ds_name] = plain_env(docs[0])
    return out


@pytest.fixture(scope="module")
def mesh(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("ambient-istioctl")
    inv_path = d / "inventory.yml"
    inv = lab.inventory(MODEL, inv_path, d / "ca")
    inv["all"]["vars"]["istio_install_method"] = "istioctl"
    inv_path.write_text(yaml.safe_dump(inv))
    plan = planned(inv)
    contexts = lab.contexts()
    by_context = dict((c["context"], c) for c in plan["clusters"].values())
    assert sorted(by_context) == sorted(contexts), (sorted(by_context), contexts)
    before = cluster_snapshot.take(contexts, env=lab.env)
    out = dict(inv=inv, inv_path=inv_path, plan=plan, contexts=contexts, by_context=by_context)
    for name, playbook, extra in (("check", "ambient.yml", ("--check", "--diff")), ("converge", "ambient.yml", ()),
                                  ("again", "ambient.yml", ()), ("uninstall", "uninstall.yml", PURGE)):
        if name == "uninstall":
            out["installed"] = installed_state(lab, contexts, by_context)
        mark = lab.mark()
        proc = lab.playbook(playbook, inv_path, *extra)
        out[name] = dict(proc=proc, writes=lab.writes(mark), changed=changed_tasks(proc.stdout))
    out["leftovers"] = cluster_snapshot.compare(before, cluster_snapshot.take(contexts, env=lab.env))
    return out


def installed_state(lab, contexts, by_context):
    """What the converge left, read before the uninstall: DaemonSets, Helm releases, east-west Gateways."""
    state = {}
    for context in contexts:
        ns = by_context[context]["install"]["node_namespace"]
        daemonsets = json.loads(run("kubectl", "--context", context, "-n", ns, "get", "daemonsets", "-o", "json", env=lab.env).stdout)["items"]
        releases = json.loads(run("helm", "--kube-context", context, "list", "-A", "-o", "json", env=lab.env).stdout)
        gateway = json.loads(run("kubectl", "--context", context, "-n", "istio-system", "get", "gateways.gateway.networking.k8s.io",
                                 "istio-eastwestgateway", "-o", "json", env=lab.env).stdout)
        state[context] = dict(daemonsets=dict((ds["metadata"]["name"], ds) for ds in daemonsets),
                              releases=sorted(r["name"] for r in releases), gateway=gateway)
    return state


def ok(result):
    proc = result["proc"]
    assert proc.returncode == 0, "%s\n%s" % (proc.stdout[-8000:], proc.stderr[-2000:])


def test_check_mode_writes_nothing_and_predicts_the_converge(mesh):
    check = mesh["check"]
    ok(check)
    assert all(n == 0 for n in check["writes"].values()), check["writes"]
    assert check["changed"] == mesh["converge"]["changed"]
    assert "ztunnel:" in check["proc"].stdout, "the diff shows the IstioOperator with its ztunnel component"


def test_converge_installs_istiod_cni_and_ztunnel_with_istioctl_and_verifies(mesh):
    converge = mesh["converge"]
    ok(converge)
    stdout = converge["proc"].stdout
    hosts = sorted(mesh["plan"]["clusters"])
    assert [(h, ISTIOCTL_TASK) for h in hosts] == [pair for pair in converge["changed"] if pair[1] == ISTIOCTL_TASK]
    assert not any("Install the istio-cni node agent" in task or "Install ztunnel" in task for dummy, task in converge["changed"])
    for host in hosts:
        others = [h for h in hosts if h != host]
        for other in others:
            assert "%s=synced" % mesh["plan"]["clusters"][other]["cluster_id"] in stdout
    for context in mesh["contexts"]:
        state = mesh["installed"][context]
        assert state["releases"] == [], "%s: istioctl installs no Helm release: %s" % (context, state["releases"])
        conditions = dict((c["type"], c["status"]) for c in state["gateway"]["status"]["conditions"])
        assert conditions.get("Programmed") == "True", (context, conditions)
        assert sorted(state["daemonsets"]) == ["istio-cni-node", "ztunnel"]
        for name, component in (("ztunnel", "Ztunnel"), ("istio-cni-node", "Cni")):
            ds = state["daemonsets"][name]
            assert ds["metadata"]["labels"].get("operator.istio.io/component") == component, "an IstioOperator component"
            assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] >= 1, (context, name, ds["status"])


def test_ztunnel_carries_the_cluster_id_and_network(mesh):
    for context in mesh["contexts"]:
        cluster = mesh["by_context"][context]
        env = plain_env(mesh["installed"][context]["daemonsets"]["ztunnel"])["istio-proxy"]
        assert (env.get("ISTIO_META_CLUSTER_ID"), env.get("NETWORK")) == (cluster["cluster_id"], cluster["network"]), env


def test_node_agents_env_is_what_the_helm_method_sets(mesh, lab):
    problems = []
    for context in mesh["contexts"]:
        expected = helm_env(mesh["inv"], mesh["by_context"][context], lab)
        for ds_name, containers in expected.items():
            live = plain_env(mesh["installed"][context]["daemonsets"][ds_name])
            known = ONLY_ISTIOCTL_ENV.get(ds_name, {})
            for container, helm in containers.items():
                istioctl = dict((k, v) for k, v in (live.get(container) or {}).items() if k not in known)
                if istioctl != helm:
                    problems.append("%s %s/%s:\n  helm     %s\n  istioctl %s" % (context, ds_name, container, helm, istioctl))
                for name in known:
                    if name in helm:
                        problems.append("%s %s/%s: %s is listed as istioctl-only but Helm sets it too" % (context, ds_name, container, name))
    assert problems == [], "\n".join(problems)
    # Equal and meaningful: Helm's ztunnel has the multicluster settings at all.
    first = mesh["by_context"][mesh["contexts"][0]]
    helm = helm_env(mesh["inv"], first, lab)["ztunnel"]["istio-proxy"]
    assert (helm["ISTIO_META_CLUSTER_ID"], helm["NETWORK"]) == (first["cluster_id"], first["network"])


def test_rerun_changes_and_writes_nothing(mesh):
    again = mesh["again"]
    ok(again)
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_uninstall_leaves_the_clusters_as_they_were(mesh):
    ok(mesh["uninstall"])
    assert any("Uninstall the control plane installed with istioctl" in task for dummy, task in mesh["uninstall"]["changed"])
    assert mesh["leftovers"] == {}, "left over (added) or lost (removed) by install + uninstall:\n" + json.dumps(mesh["leftovers"], indent=1)


@pytest.fixture(scope="module")
def openshift(mesh, lab):
    """Then, on the same lab, the second cluster serving OpenShift's API groups: its node agents go to kube-system (with
    multus' NetworkAttachmentDefinition), which the uninstall does not delete as it deletes the system namespace."""
    lab.meshlab("openshift", "--cluster", "2")
    contexts = mesh["contexts"]
    inv_path = mesh["inv_path"]
    before = cluster_snapshot.take(contexts, env=lab.env)
    out = dict(install=lab.playbook("ambient.yml", inv_path))
    out["daemonsets"] = dict((c, sorted("%s/%s" % (ds["metadata"]["namespace"], ds["metadata"]["name"]) for ds in json.loads(
        run("kubectl", "--context", c, "get", "daemonsets", "-A", "-o", "json", env=lab.env).stdout)["items"])) for c in contexts)
    out["ztunnel"] = plain_env(json.loads(run("kubectl", "--context", contexts[1], "-n", "kube-system", "get", "daemonset", "ztunnel",
                                              "-o", "json", env=lab.env).stdout))["istio-proxy"]
    out["uninstall"] = lab.playbook("uninstall.yml", inv_path, *PURGE)
    out["leftovers"] = cluster_snapshot.compare(before, cluster_snapshot.take(contexts, env=lab.env))
    return out


def test_openshift_node_agents_in_kube_system_verified_and_uninstalled(openshift, mesh):
    install = openshift["install"]
    assert install.returncode == 0, install.stdout[-8000:]
    c1, c2 = mesh["contexts"]
    assert openshift["daemonsets"] == {c1: ["istio-system/istio-cni-node", "istio-system/ztunnel"],
                                       c2: ["kube-system/istio-cni-node", "kube-system/ztunnel"]}
    cluster = mesh["by_context"][c2]
    assert (openshift["ztunnel"].get("ISTIO_META_CLUSTER_ID"), openshift["ztunnel"].get("NETWORK")) == (cluster["cluster_id"], cluster["network"])
    assert "ztunnel: 1/1 ready, ISTIO_META_CLUSTER_ID=%s" % cluster["cluster_id"] in install.stdout, "verify read kube-system"
    assert openshift["uninstall"].returncode == 0, openshift["uninstall"].stdout[-8000:]
    assert openshift["leftovers"] == {}, json.dumps(openshift["leftovers"], indent=1)
