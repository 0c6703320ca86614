"""A canary upgrade with istio_install_method: istioctl on the lab (multi-primary, one network), one flow on one lab:
install the default revision, add revision `canary` next to it, verify both, uninstall the default revision, verify
that canary still works and that its re-run changes nothing, then uninstall canary with the purge and compare every
object of both clusters with the empty lab."""
import json

import pytest
import yaml

import cluster_snapshot
from conftest import flow_steps, run
from test_revision import istiod_views

MODEL = "multi-primary"
CANARY = ("-e", "istio_revision=canary")
PURGE = ("-e", "istio_purge_crds=true")
pytestmark = pytest.mark.timeout(2700)


@pytest.fixture(scope="module")
def flow(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("revision-istioctl")
    inv_path = d / "inventory.yml"
    inv = lab.inventory(MODEL, inv_path, d / "ca")
    inv["all"]["vars"]["istio_install_method"] = "istioctl"
    inv_path.write_text(yaml.safe_dump(inv))
    contexts = lab.contexts()
    out = {"before": cluster_snapshot.take(contexts, env=lab.env)}
    playbook = flow_steps(lab, inv_path, out)

    def objects(step):
        out[step] = dict((c, control_planes(lab, c)) for c in contexts)

    playbook("default", "multi-primary.yml")
    playbook("canary", "multi-primary.yml", *CANARY)
    objects("both")
    playbook("verify_both", "verify.yml")
    playbook("remove_default", "uninstall.yml")
    objects("canary_only")
    playbook("verify_canary", "verify.yml", *CANARY)
    playbook("canary_again", "multi-primary.yml", *CANARY)
    playbook("remove_canary", "uninstall.yml", *CANARY, *PURGE)
    out["after"] = cluster_snapshot.take(contexts, env=lab.env)
    return out


def control_planes(lab, context):
    """istiod Deployments, install records, and which istiod each webhook calls (by the webhook's name)."""
    names = run("kubectl", "--context", context, "-n", "istio-system", "get", "deployments,configmaps", "-o", "name",
                env=lab.env).stdout.split()
    hooks = json.loads(run("kubectl", "--context", context, "get",
                           "mutatingwebhookconfigurations,validatingwebhookconfigurations", "-o", "json",
                           env=lab.env).stdout)["items"]
    calls = dict((h["metadata"]["name"], sorted(set((w["clientConfig"].get("service") or {}).get("name", "")
                                                    for w in h.get("webhooks") or [])))
                 for h in hooks)
    return dict(names=names, webhooks=calls)


def test_two_istioctl_revisions_side_by_side(flow):
    for context, objs in flow["both"].items():
        for name in ("deployment.apps/istiod", "deployment.apps/istiod-canary",
                     "configmap/meshops-istio-install", "configmap/meshops-istio-install-canary"):
            assert name in objs["names"], (context, name, objs["names"])
        assert objs["webhooks"]["istio-sidecar-injector"] == ["istiod"], objs["webhooks"]
        assert objs["webhooks"]["istio-sidecar-injector-canary"] == ["istiod-canary"], objs["webhooks"]
    views = istiod_views(flow["verify_both"]["proc"].stdout)
    assert len([p for p in views if p.startswith("istiod-canary-")]) == 2 and len(views) == 4, views
    for pod, clusters in views.items():
        assert clusters.count("=synced") == 2, (pod, clusters)


def test_removing_the_default_istioctl_revision_keeps_canary_working(flow):
    for context, objs in flow["canary_only"].items():
        assert "deployment.apps/istiod" not in objs["names"] and "configmap/meshops-istio-install" not in objs["names"]
        assert "deployment.apps/istiod-canary" in objs["names"], (context, objs["names"])
        # Every webhook left calls an istiod that is still there; canary's injector and validator are among them.
        assert objs["webhooks"]["istio-sidecar-injector-canary"] == ["istiod-canary"], objs["webhooks"]
        assert objs["webhooks"]["istio-validator-canary-istio-system"] == ["istiod-canary"], objs["webhooks"]
        for hook, services in objs["webhooks"].items():
            assert set(services) <= {"istiod-canary"}, (context, hook, services)
    views = istiod_views(flow["verify_canary"]["proc"].stdout)
    assert len(views) == 2 and all(p.startswith("istiod-canary-") for p in views), views
    assert all(clusters.count("=synced") == 2 for clusters in views.values()), views
    again = flow["canary_again"]
    assert again["changed"] == [], again["changed"]
    assert all(n == 0 for n in again["writes"].values()), again["writes"]


def test_uninstalling_the_last_istioctl_revision_leaves_the_clusters_as_they_were(flow):
    diff = cluster_snapshot.compare(flow["before"], flow["after"])
    assert diff == {}, json.dumps(diff, indent=1)
