"""A canary revision in an ambient mesh (two primaries on two networks, Helm), one flow on one lab: install the default
revision, add `canary` (istiod-canary on both clusters; the node agents and the east-west Gateway follow the revision
installed last), verify both, then take canary away again (check mode first). The shared objects it served are handed
back to the default revision: ztunnel calls istiod again and the Gateway loses its revision label, so verify passes and
a re-run of the unrevisioned playbook changes and writes nothing. verify's ambient check is shown to fail when ztunnel
or the Gateway follows a revision that has no istiod. The purge uninstall leaves the clusters as they were."""
import json
import re

import pytest

import cluster_snapshot
from conftest import flow_steps, run, step_seconds

MODEL = "ambient"
CANARY = ("-e", "istio_revision=canary")
PURGE = ("-e", "istio_purge_crds=true")
NS = "istio-system"
DEFAULT_ADDRESS = "istiod.%s.svc:15012" % NS
CANARY_ADDRESS = "istiod-canary.%s.svc:15012" % NS
# Eight playbook runs in one module fixture on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2700)


@pytest.fixture(scope="module")
def flow(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("revision-ambient")
    inv = d / "inventory.yml"
    lab.inventory(MODEL, inv, d / "ca")
    contexts = lab.contexts()
    out = {"before": cluster_snapshot.take(contexts, env=lab.env), "contexts": contexts}
    playbook = flow_steps(lab, inv, out)

    def state(step):
        out[step] = dict((c, shared_state(lab, c)) for c in contexts)

    playbook("default", "ambient.yml")
    playbook("canary", "ambient.yml", *CANARY)
    state("both")
    playbook("verify_both", "verify.yml")
    playbook("check_remove_canary", "uninstall.yml", *CANARY, "--check", "--diff")
    playbook("remove_canary", "uninstall.yml", *CANARY)
    state("default_only")
    playbook("verify_default", "verify.yml")
    playbook("default_again", "ambient.yml")
    # Break what the handover repairs, by hand, on the first cluster: verify must say so.
    first = contexts[0]
    kubectl(lab, first, "-n", NS, "set", "env", "daemonset/ztunnel", "CA_ADDRESS=" + CANARY_ADDRESS)
    kubectl(lab, first, "-n", NS, "label", "gateways.gateway.networking.k8s.io/istio-eastwestgateway", "istio.io/rev=canary")
    playbook("verify_broken", "verify.yml", "-e", "istio_verify_timeout=0", expect_ok=False)
    kubectl(lab, first, "-n", NS, "set", "env", "daemonset/ztunnel", "CA_ADDRESS=" + DEFAULT_ADDRESS)
    kubectl(lab, first, "-n", NS, "label", "gateways.gateway.networking.k8s.io/istio-eastwestgateway", "istio.io/rev-")
    playbook("remove_all", "uninstall.yml", *PURGE)
    out["after"] = cluster_snapshot.take(contexts, env=lab.env)
    print("\nambient revision flow: " + step_seconds(out))
    return out


def kubectl(lab, context, *args):
    return run("kubectl", "--context", context, *args, env=lab.env).stdout


def shared_state(lab, context):
    """Which revision each shared object serves: istiod Deployments, ztunnel's istiod, istio-cni's and the Gateway's label."""
    def get(*what):
        return json.loads(kubectl(lab, context, "-n", NS, "get", *what, "-o", "json"))

    ztunnel = get("daemonset", "ztunnel")
    env = dict((e["name"], e.get("value")) for e in ztunnel["spec"]["template"]["spec"]["containers"][0].get("env") or [])
    cni = get("daemonset", "istio-cni-node")
    gateway = get("gateways.gateway.networking.k8s.io", "istio-eastwestgateway")
    return dict(
        istiods=sorted(d["metadata"]["name"] for d in get("deployments", "-l", "app=istiod")["items"]),
        ztunnel=(env.get("CA_ADDRESS"), env.get("XDS_ADDRESS")),
        cni_rev=(cni["metadata"].get("labels") or {}).get("istio.io/rev"),
        gateway_rev=(gateway["metadata"].get("labels") or {}).get("istio.io/rev"),
        gateway_programmed=[c["status"] for c in (gateway.get("status") or {}).get("conditions") or [] if c["type"] == "Programmed"],
    )


def said(step_result):
    return " ".join(step_result["proc"].stdout.split())


def test_canary_installs_a_second_istiod_and_the_shared_objects_follow_it(flow):
    for context, s in flow["both"].items():
        assert s["istiods"] == ["istiod", "istiod-canary"], (context, s)
        assert s["ztunnel"] == (CANARY_ADDRESS, CANARY_ADDRESS), (context, s)
        assert (s["cni_rev"], s["gateway_rev"], s["gateway_programmed"]) == ("canary", "canary", ["True"]), (context, s)


def test_verify_checks_both_revisions(flow):
    # "Show what each istiod sees": one line per istiod pod, every one of both revisions on both clusters.
    pods = re.findall(r"'(istiod-[a-z0-9-]+): clusters [^']*=synced", said(flow["verify_both"]))
    assert len([p for p in pods if p.startswith("istiod-canary-")]) == 2, pods
    assert len([p for p in pods if not p.startswith("istiod-canary-")]) == 2, pods


def test_removing_canary_in_check_mode_writes_nothing_and_predicts_it(flow):
    check = flow["check_remove_canary"]
    assert sum(check["writes"].values()) == 0, check["writes"]
    assert check["changed"] == flow["remove_canary"]["changed"]


def test_removing_canary_hands_ztunnel_cni_and_the_gateway_back_to_default(flow):
    assert "removing control-plane revision canary only: revision(s) default stay" in said(flow["remove_canary"])
    changed = set(task for dummy, task in flow["remove_canary"]["changed"])
    assert "meshops.istio.uninstall : Hand the ambient east-west Gateway of this revision to the revision that stays" in changed, changed
    for context, s in flow["default_only"].items():
        assert s["istiods"] == ["istiod"], (context, s)
        assert s["ztunnel"] == (DEFAULT_ADDRESS, DEFAULT_ADDRESS), (context, s)
        assert (s["cni_rev"], s["gateway_rev"]) == ("default", None), (context, s)


def test_default_verifies_and_its_rerun_changes_nothing(flow):
    assert flow["verify_default"]["proc"].returncode == 0
    again = flow["default_again"]
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_verify_fails_when_ztunnel_or_the_gateway_follow_a_revision_without_istiod(flow):
    broken = flow["verify_broken"]
    assert broken["proc"].returncode != 0
    text = said(broken)
    assert "its control plane istiod-canary.%s.svc (CA_ADDRESS) does not exist" % NS in text, text[-4000:]
    assert "revision canary, whose istiod deploys it, has no istiod in %s" % NS in text, text[-4000:]


def test_uninstall_leaves_the_clusters_as_they_were(flow):
    diff = cluster_snapshot.compare(flow["before"], flow["after"])
    assert diff == {}, json.dumps(diff, indent=1)
