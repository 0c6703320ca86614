"""Helm and istioctl install the same mesh: primary-remote on two networks (the primary with externalIstiod, the remote
with istioctl's `remote` profile), on one lab, one method after the other with an uninstall (purge) in between. Each
install must verify, and the objects it adds to every cluster must be the same, by kind and name and by the fields that
make the mesh (istiod's environment, the mesh config, the webhooks, the Services), except for an explicit list of known
differences, each with its reason."""
import json
import re

import pytest
import yaml

import cluster_snapshot
from conftest import changed_tasks, run

MODEL = "primary-remote-multi-network"
PURGE = ("-e", "istio_purge_crds=true")
# Two installs and two uninstalls in one module fixture: more than the default 900 s on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2700)

# Objects only one method creates (regular expressions on cluster_snapshot's "Kind.group namespace/name").
ONLY_HELM = {
    # Helm keeps each release's state in a Secret; istioctl keeps none.
    r"Secret istio-system/sh\.helm\.release\.v1\.(istio-base|istiod)\.v\d+": "Helm release records",
}
ONLY_ISTIOCTL = {
    # istioctl install makes the revision it installs the default tag: a Service and an injection webhook
    # for the tag, which Helm creates only with revisionTags.
    r"Service istio-system/istiod-revision-tag-default": "istioctl's default revision tag",
    r"MutatingWebhookConfiguration\.admissionregistration\.k8s\.io -/istio-revision-tag-default": "istioctl's default revision tag",
    # On a remote the tag's Service has no selector (istiod runs on the primary): istioctl writes its Endpoints.
    r"Endpoints istio-system/istiod-revision-tag-default": "istioctl's default revision tag (remote)",
    # Where the collection remembers the IstioOperator it installed, so that a re-run runs istioctl only on a change.
    r"ConfigMap istio-system/meshops-istio-install": "the istioctl_install module's state",
}
# Objects with generated names (derived from a Deployment, DaemonSet or Service, which are compared themselves; an
# IPAddress is named after the ClusterIP the API server picked for a Service).
GENERATED = re.compile(r"^(Pod|ReplicaSet\.apps|ControllerRevision\.apps|EndpointSlice\.discovery\.k8s\.io|IPAddress\.networking\.k8s\.io) ")
# Deployment/ConfigMap fields that legitimately differ between the methods (path in the fields dict -> reason).
FIELD_DIFFERENCES = {}


def key_fields(context, env):
    """What makes the mesh in one cluster: istiod env, mesh config, webhooks, Services (by name)."""
    def get(*what):
        return json.loads(run("kubectl", "--context", context, *what, "-o", "json", env=env).stdout)["items"]

    out = {}
    for dep in get("-n", "istio-system", "get", "deployments"):
        if dep["metadata"]["name"].startswith("istiod"):
            container = dep["spec"]["template"]["spec"]["containers"][0]
            pairs = [e for e in container.get("env") or [] if "value" in e]
            out["Deployment/%s env" % dep["metadata"]["name"]] = dict((e["name"], e["value"]) for e in pairs)
    for cm in get("-n", "istio-system", "get", "configmaps"):
        if cm["metadata"]["name"] == "istio" and "mesh" in (cm.get("data") or {}):
            mesh = yaml.safe_load(cm["data"]["mesh"]) or {}
            out["ConfigMap/istio mesh"] = dict((k, mesh.get(k)) for k in ("trustDomain", "rootNamespace"))
            out["ConfigMap/istio defaultConfig"] = dict((k, (mesh.get("defaultConfig") or {}).get(k))
                                                        for k in ("meshId", "discoveryAddress"))
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        for hook in get("get", kind, "-l", "app.kubernetes.io/managed-by!=meshlab"):
            out["%s/%s" % (hook["kind"], hook["metadata"]["name"])] = sorted(
                (w["name"], (w["clientConfig"].get("service") or {}).get("name"), (w["clientConfig"].get("service") or {}).get("path"),
                 w.get("failurePolicy")) for w in hook.get("webhooks") or [])
    for svc in get("-n", "istio-system", "get", "services"):
        out["Service/%s" % svc["metadata"]["name"]] = dict(
            type=svc["spec"].get("type"), externalName=svc["spec"].get("externalName"),
            ports=sorted((p.get("name"), p["port"], str(p.get("targetPort"))) for p in svc["spec"].get("ports") or []))
    return out


@pytest.fixture(scope="module")
def installs(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("equivalence")
    contexts = lab.contexts()
    before = cluster_snapshot.take(contexts, env=lab.env)
    out = {}
    for method in ("helm", "istioctl"):
        inv_path = d / ("%s.yml" % method)
        inv = lab.inventory(MODEL, inv_path, d / "ca")
        inv["all"]["vars"]["istio_install_method"] = method
        inv_path.write_text(yaml.safe_dump(inv))
        proc = lab.playbook("primary-remote.yml", inv_path)
        assert proc.returncode == 0, "%s install failed:\n%s" % (method, proc.stdout[-8000:])
        snap = cluster_snapshot.take(contexts, env=lab.env)
        out[method] = dict(proc=proc, changed=changed_tasks(proc.stdout),
                           added=dict((c, sorted(n for n in set(snap[c]) - set(before[c]) if not GENERATED.match(n))) for c in contexts),
                           fields=dict((c, key_fields(c, lab.env)) for c in contexts))
        gone = lab.playbook("uninstall.yml", inv_path, *PURGE)
        assert gone.returncode == 0, "%s uninstall failed:\n%s" % (method, gone.stdout[-8000:])
        out[method]["leftovers"] = cluster_snapshot.compare(before, cluster_snapshot.take(contexts, env=lab.env))
    return out


def unexplained(names, allowed):
    return [n for n in names if not any(re.fullmatch(pattern, n) for pattern in allowed)]


def test_both_methods_install_a_verified_mesh_and_uninstall_it(installs):
    for method in ("helm", "istioctl"):
        stdout = installs[method]["proc"].stdout
        assert "cluster2=synced" in stdout, "%s: the primary's istiod does not report the remote synced" % method
        assert installs[method]["leftovers"] == {}, "%s: %s" % (method, json.dumps(installs[method]["leftovers"], indent=1))
    istioctl_tasks = set(pair[1] for pair in installs["istioctl"]["changed"])
    assert any("Install the control plane with istioctl" in t for t in istioctl_tasks), istioctl_tasks
    assert not any(t.endswith("Install istiod") for t in istioctl_tasks), "istioctl: no istiod Helm release"


def test_same_objects_except_the_known_differences(installs):
    problems = []
    for context, helm_added in installs["helm"]["added"].items():
        helm, istioctl = set(helm_added), set(installs["istioctl"]["added"][context])
        for name in unexplained(sorted(helm - istioctl), ONLY_HELM):
            problems.append("%s: only Helm created %s" % (context, name))
        for name in unexplained(sorted(istioctl - helm), ONLY_ISTIOCTL):
            problems.append("%s: only istioctl created %s" % (context, name))
    assert problems == [], "\n".join(problems)


def test_same_key_fields(installs):
    problems = []
    for context, helm in installs["helm"]["fields"].items():
        istioctl = installs["istioctl"]["fields"][context]
        for key in sorted(set(helm) & set(istioctl)):
            if helm[key] != istioctl[key] and key not in FIELD_DIFFERENCES:
                problems.append("%s %s:\n  helm     %s\n  istioctl %s" % (context, key, helm[key], istioctl[key]))
    assert problems == [], "\n".join(problems)
    # The fields that make the multicluster mesh are there at all (not equal by both being empty).
    primary, remote = (installs["helm"]["fields"][c] for c in sorted(installs["helm"]["fields"]))  # cluster 1, cluster 2 of this slot
    env = primary["Deployment/istiod env"]
    assert env.get("CLUSTER_ID") == "cluster1" and env.get("EXTERNAL_ISTIOD") == "true", env
    assert primary["ConfigMap/istio defaultConfig"]["meshId"] == "mesh1"
    assert remote["Service/istiod"]["ports"], remote["Service/istiod"]
    assert any("/inject/cluster/cluster2/net/network2" == hook[2] for hook in remote["MutatingWebhookConfiguration/istio-sidecar-injector"])
