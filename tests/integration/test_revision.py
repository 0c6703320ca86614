"""A canary upgrade on the lab (primary-remote, one network: the primary exposes istiod to the remote through its
east-west gateway), one flow on one lab: install the default revision, add revision `canary` next to it, verify both,
uninstall the default revision (check mode first), verify that canary still works and that its re-run changes nothing,
then uninstall canary with the purge and compare every object of both clusters with the empty lab."""
import json
import re

import pytest

import cluster_snapshot
from conftest import flow_steps, run, step_seconds

MODEL = "primary-remote"
CANARY = ("-e", "istio_revision=canary")
PURGE = ("-e", "istio_purge_crds=true")
PRIMARY, REMOTE = "cluster1", "cluster2"
# Ten playbook runs in one module fixture: more than the default 900 s on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2700)


@pytest.fixture(scope="module")
def flow(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("revision")
    inv = d / "inventory.yml"
    lab.inventory(MODEL, inv, d / "ca")
    contexts = lab.contexts()
    out = {"before": cluster_snapshot.take(contexts, env=lab.env)}
    playbook = flow_steps(lab, inv, out)

    def objects(step):
        out[step] = dict((c, kubectl_objects(lab, c)) for c in contexts)

    playbook("default", "primary-remote.yml")
    playbook("canary", "primary-remote.yml", *CANARY)
    objects("both_objects")
    playbook("verify_both", "verify.yml")
    playbook("check_remove_default", "uninstall.yml", "--check", "--diff")
    playbook("remove_default", "uninstall.yml")
    objects("canary_objects")
    playbook("verify_canary", "verify.yml", *CANARY)
    playbook("canary_again", "primary-remote.yml", *CANARY)
    playbook("remove_canary", "uninstall.yml", *CANARY, *PURGE)
    out["after"] = cluster_snapshot.take(contexts, env=lab.env)
    print("\nrevision flow: " + step_seconds(out))
    return out


def kubectl_objects(lab, context):
    """The revision-relevant objects of one cluster: names, and what each injection webhook calls."""
    ns = json.loads(run("kubectl", "--context", context, "-n", "istio-system", "get",
                        "deployments,services,virtualservices.networking.istio.io,gateways.networking.istio.io,secrets",
                        "-o", "json", env=lab.env).stdout)["items"]
    hooks = json.loads(run("kubectl", "--context", context, "get", "mutatingwebhookconfigurations,validatingwebhookconfigurations",
                           "-o", "json", env=lab.env).stdout)["items"]
    calls = {}
    for hook in hooks:
        services = set((w["clientConfig"].get("service") or {}).get("name") for w in hook.get("webhooks") or [])
        paths = set((w["clientConfig"].get("service") or {}).get("path") for w in hook.get("webhooks") or [])
        calls["%s/%s" % (hook["kind"], hook["metadata"]["name"])] = dict(
            services=sorted(s for s in services if s), paths=sorted(p for p in paths if p),
            rev=(hook["metadata"].get("labels") or {}).get("istio.io/rev"))
    return dict(names=sorted("%s/%s" % (o["kind"], o["metadata"]["name"]) for o in ns), webhooks=calls)


def istiod_views(stdout):
    """pod name -> the clusters line of 'Show what each istiod sees'."""
    return dict(re.findall(r"'(istiod-[a-z0-9-]+): clusters ([^;']+)", " ".join(stdout.split())))


def test_two_revisions_side_by_side_each_with_its_own_webhooks(flow):
    primary, remote = (flow["both_objects"][c] for c in sorted(flow["both_objects"]))  # cluster 1, cluster 2 of this slot
    for name in ("Deployment/istiod", "Deployment/istiod-canary", "Service/istiod", "Service/istiod-canary",
                 "VirtualService/istiod-vs", "VirtualService/istiod-vs-canary", "Gateway/istiod-gateway"):
        assert name in primary["names"], name
    # The remote has no istiod, a Service per revision that leads to the primary.
    assert "Service/istiod" in remote["names"] and "Service/istiod-canary" in remote["names"]
    assert not [n for n in remote["names"] if n.startswith("Deployment/istiod")], remote["names"]
    for objs, path in ((primary, "/inject"), (remote, "/inject/cluster/%s/net/network1" % REMOTE)):
        default = objs["webhooks"]["MutatingWebhookConfiguration/istio-sidecar-injector"]
        canary = objs["webhooks"]["MutatingWebhookConfiguration/istio-sidecar-injector-canary"]
        assert (default["rev"], default["services"]) == ("default", ["istiod"]), default
        assert (canary["rev"], canary["services"]) == ("canary", ["istiod-canary"]), canary
        assert path in canary["paths"], canary
        assert objs["webhooks"]["ValidatingWebhookConfiguration/istio-validator-canary-istio-system"]["services"] == ["istiod-canary"]
    # Shared by both revisions: one east-west gateway, one remote secret, one reader token.
    assert primary["names"].count("Service/istio-eastwestgateway") == 1
    assert "Secret/istio-remote-secret-%s" % REMOTE in primary["names"]


def test_both_istiods_report_the_remote_synced(flow):
    views = istiod_views(flow["verify_both"]["proc"].stdout)
    canary = [pod for pod in views if pod.startswith("istiod-canary-")]
    default = [pod for pod in views if not pod.startswith("istiod-canary-")]
    assert len(canary) == 1 and len(default) == 1, views
    for pod, clusters in views.items():
        assert "%s=synced(local)" % PRIMARY in clusters and "%s=synced" % REMOTE in clusters.split(), (pod, clusters)


def test_removing_the_default_revision_in_check_mode_writes_nothing_and_predicts_it(flow):
    check = flow["check_remove_default"]
    assert sum(check["writes"].values()) == 0, check["writes"]
    assert check["changed"] == flow["remove_default"]["changed"]


def test_removing_the_default_revision_keeps_canary_and_what_the_revisions_share(flow):
    primary, remote = (flow["canary_objects"][c] for c in sorted(flow["canary_objects"]))  # cluster 1, cluster 2 of this slot
    for gone in ("Deployment/istiod", "Service/istiod", "VirtualService/istiod-vs"):
        assert gone not in primary["names"], gone
    assert "Service/istiod" not in remote["names"]
    for kept in ("Deployment/istiod-canary", "VirtualService/istiod-vs-canary", "Gateway/istiod-gateway",
                 "Service/istio-eastwestgateway", "Secret/cacerts", "Secret/istio-remote-secret-%s" % REMOTE):
        assert kept in primary["names"], kept
    assert "Secret/istio-reader-service-account-istio-remote-secret-token" in remote["names"], "the canary istiod still reads the remote with it"
    for objs in (primary, remote):
        assert "MutatingWebhookConfiguration/istio-sidecar-injector" not in objs["webhooks"]
        assert "MutatingWebhookConfiguration/istio-sidecar-injector-canary" in objs["webhooks"]
        # The base chart's default validator now calls the istiod that stays (else every Istio config write fails).
        assert objs["webhooks"]["ValidatingWebhookConfiguration/istiod-default-validator"]["services"] == ["istiod-canary"]
    said = " ".join(flow["remove_default"]["proc"].stdout.split())
    assert "removing control-plane revision default only: revision(s) canary stay" in said


def test_canary_still_works_and_its_rerun_changes_nothing(flow):
    views = istiod_views(flow["verify_canary"]["proc"].stdout)
    assert list(views) and all(pod.startswith("istiod-canary-") for pod in views), views
    assert all("%s=synced" % REMOTE in clusters.split() for clusters in views.values()), views
    again = flow["canary_again"]
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_uninstalling_the_last_revision_leaves_the_clusters_as_they_were(flow):
    diff = cluster_snapshot.compare(flow["before"], flow["after"])
    assert diff == {}, json.dumps(diff, indent=1)
