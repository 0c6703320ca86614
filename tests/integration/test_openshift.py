"""OpenShift on the lab: cluster 2 serves the OpenShift API groups (`meshlab openshift`, CRDs only), so detection is
real. A two-network multi-primary mesh gives that cluster the openshift platform (istio-cni in kube-system with the SCC
grant, multus' NetworkAttachmentDefinition, istiod injecting for CNI) and leaves cluster 1 a plain Kubernetes one;
a re-run writes nothing; a platform the inventory declares against what the cluster serves stops the run in preflight;
the uninstall returns both clusters to their objects before the install; the same with istioctl."""
import json

import pytest
import yaml

import cluster_snapshot
from conftest import changed_tasks, run

MODEL = "multi-primary-multi-network"
PURGE = ("-e", "istio_purge_crds=true")


@pytest.fixture(scope="module")
def mesh(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openshift")
    lab.meshlab("openshift", "--cluster", "2")
    inv = tmp / "inventory.yml"
    lab.inventory(MODEL, inv, tmp / "ca")
    contexts = lab.contexts()
    before = cluster_snapshot.take(contexts, env=lab.env)
    install = lab.playbook("multi-primary.yml", inv, check=True)
    return dict(lab=lab, tmp=tmp, inv=inv, contexts=contexts, before=before, install=install)


def kubectl_json(lab, context, *args):
    return json.loads(run("kubectl", "--context", context, *args, "-o", "json", env=lab.env).stdout)


def test_detected_openshift_cluster_gets_istio_cni_with_the_scc_grant(mesh):
    lab, (c1, c2) = mesh["lab"], mesh["contexts"]
    ds = kubectl_json(lab, c2, "-n", "kube-system", "get", "daemonset", "istio-cni-node")
    assert ds["status"]["numberReady"] == 1
    rules = kubectl_json(lab, c2, "get", "clusterrole", "istio-cni")["rules"]
    assert {"apiGroups": ["security.openshift.io"], "resources": ["securitycontextconstraints"],
            "resourceNames": ["privileged"], "verbs": ["use"]} in rules
    nad = kubectl_json(lab, c2, "get", "network-attachment-definitions.k8s.cni.cncf.io", "-A")["items"]
    assert [n["metadata"]["name"] for n in nad] == ["istio-cni"]
    # Cluster 1 serves no OpenShift API group: no node agent, no platform.
    assert kubectl_json(lab, c1, "get", "daemonsets", "-A")["items"] == []


def injector_values(lab, context):
    cm = kubectl_json(lab, context, "-n", "istio-system", "get", "configmap", "istio-sidecar-injector")
    return json.loads(cm["data"]["values"])


def test_istiod_injects_for_the_cni_on_openshift_only(mesh):
    lab, (c1, c2) = mesh["lab"], mesh["contexts"]
    on_openshift, plain = injector_values(lab, c2), injector_values(lab, c1)
    assert on_openshift["global"]["platform"] == "openshift" and on_openshift["pilot"]["cni"]["enabled"] is True
    assert on_openshift["global"]["multiCluster"]["clusterName"] == "cluster2"
    assert plain["global"].get("platform", "") == "" and not plain["pilot"]["cni"]["enabled"]


def test_rerun_changes_and_writes_nothing(mesh):
    lab = mesh["lab"]
    mark = lab.mark()
    proc = lab.playbook("multi-primary.yml", mesh["inv"], check=True)
    assert changed_tasks(proc.stdout) == []
    assert sum(lab.writes(mark).values()) == 0, lab.writes(mark)


def test_declared_platform_that_the_cluster_contradicts_stops_preflight(mesh):
    lab = mesh["lab"]
    inv = yaml.safe_load(mesh["inv"].read_text())
    hosts = inv["all"]["children"]["istio_primary"]["hosts"]
    hosts["cluster1"]["istio_platform"] = "openshift"
    hosts["cluster2"]["istio_platform"] = "kubernetes"
    bad = mesh["tmp"] / "declared.yml"
    bad.write_text(yaml.safe_dump(inv))
    mark = lab.mark()
    proc = lab.playbook("multi-primary.yml", bad)
    assert proc.returncode != 0
    out = proc.stdout
    assert "cluster1: istio_platform: 'openshift', but the cluster does not serve OpenShift" in out
    assert "cluster2: istio_platform: 'kubernetes', but the cluster serves OpenShift" in out
    assert sum(lab.writes(mark).values()) == 0


def test_uninstall_leaves_both_clusters_as_they_were(mesh):
    lab = mesh["lab"]
    lab.playbook("uninstall.yml", mesh["inv"], *PURGE, check=True)
    after = cluster_snapshot.take(mesh["contexts"], env=lab.env)
    assert cluster_snapshot.compare(mesh["before"], after) == {}


def test_istioctl_installs_istio_cni_as_the_iop_component_in_kube_system(mesh):
    lab, (c1, c2) = mesh["lab"], mesh["contexts"]
    istioctl = ("-e", "istio_install_method=istioctl")
    lab.playbook("multi-primary.yml", mesh["inv"], *istioctl, check=True)
    ds = kubectl_json(lab, c2, "-n", "kube-system", "get", "daemonset", "istio-cni-node")
    assert ds["metadata"]["labels"].get("operator.istio.io/component") == "Cni", ds["metadata"]["labels"]
    assert any(r.get("resources") == ["securitycontextconstraints"] and r.get("verbs") == ["use"]
               for r in kubectl_json(lab, c2, "get", "clusterrole", "istio-cni")["rules"])
    assert injector_values(lab, c2)["global"]["platform"] == "openshift"
    assert kubectl_json(lab, c1, "get", "daemonsets", "-A")["items"] == []
    lab.playbook("uninstall.yml", mesh["inv"], *istioctl, *PURGE, check=True)
    assert cluster_snapshot.compare(mesh["before"], cluster_snapshot.take(mesh["contexts"], env=lab.env)) == {}
