# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IstioOperator the istioctl method installs, and the fingerprint that decides whether istioctl runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import istioctl, topology


def test_chart_values_map_to_istio_operator_values():
    values = istioctl.values_from_charts({
        "base": {"global": {"externalIstiod": True}, "enableCRDTemplates": True},
        "istiod": {"global": {"meshID": "mesh1", "network": "n1", "remotePilotAddress": None}, "revision": "r1",
                   "env": {"A": "1"}, "cni": {"enabled": True}, "pilot": {"resources": {}}, "meshConfig": {"x": 1},
                   "istiodRemote": {"injectionPath": "/inject"}},
        "cni": None,
        "ztunnel": {"multiCluster": {"clusterName": "c1"}, "global": {"network": "n1"}, "profile": "ambient"},
    })
    assert values == {
        "global": {"externalIstiod": True, "meshID": "mesh1", "network": "n1"},
        "base": {"enableCRDTemplates": True},
        "revision": "r1", "meshConfig": {"x": 1}, "istiodRemote": {"injectionPath": "/inject"}, "profile": "ambient",
        # The istiod chart reads pilot.* at the top level: its env and cni are pilot's.
        "pilot": {"env": {"A": "1"}, "cni": {"enabled": True}, "resources": {}},
        "ztunnel": {"multiCluster": {"clusterName": "c1"}},
    }


@pytest.mark.parametrize("platform, node_namespace", [("kubernetes", "istio-system"), ("openshift", "kube-system")])
def test_ambient_plan_gives_ztunnel_its_cluster_and_network(platform, node_namespace):
    # What the istioctl ztunnel component renders from: the ztunnel chart reads multiCluster.clusterName and the
    # flattened global.network (ISTIO_META_CLUSTER_ID and NETWORK), as it does from the Helm values.
    hosts = dict((name, {"kube_context": name, "istio_network": network, "istio_version": "1.30.0", "istio_install_method": "istioctl"})
                 for name, network in (("c1", "n1"), ("c2", "n2")))
    cluster = topology.plan_mesh(hosts, {"istio_primary": ["c1", "c2"]}, "ambient")["clusters"]["c2"]
    install = topology.apply_platform(cluster, platform)["install"]
    assert install["node_namespace"] == node_namespace
    values = istioctl.values_from_charts(dict((chart, install[chart]) for chart in ("base", "istiod", "cni", "ztunnel")))
    assert values["profile"] == "ambient"
    assert values["ztunnel"]["multiCluster"] == {"clusterName": "c2"}
    assert values["global"]["network"] == "n2" and values["global"]["multiCluster"] == {"clusterName": "c2"}
    assert values["pilot"]["env"] == {"AMBIENT_ENABLE_MULTI_NETWORK": "true"}
    if platform == "openshift":
        assert values["global"]["platform"] == values["ztunnel"]["platform"] == "openshift"


def test_unknown_chart_is_an_error():
    with pytest.raises(istioctl.IstioctlError, match="gateway"):
        istioctl.values_from_charts({"gateway": {}})


def test_render_sets_namespace_and_revision_and_iop_values_win():
    iop = istioctl.render({"spec": {"profile": "default", "values": {"global": {"network": "mine"}}}}, "istio-system",
                          "r1", {"istiod": {"global": {"network": "n1", "meshID": "m"}, "revision": "r1"}})
    assert iop == {"apiVersion": istioctl.API_VERSION, "kind": istioctl.KIND, "spec": {
        "profile": "default", "revision": "r1",
        "values": {"revision": "r1", "global": {"network": "mine", "meshID": "m", "istioNamespace": "istio-system"}}}}
    assert "revision" not in istioctl.render({}, "ns")["spec"]


@pytest.mark.parametrize("iop, namespace, revision, match", [
    ({"kind": "Deployment"}, "ns", None, "IstioOperator"),
    ({"spec": {"values": {"global": {"istioNamespace": "other"}}}}, "ns", None, "istioNamespace"),
    ({"spec": {"revision": "a"}}, "ns", "b", "spec.revision"),
    ({"spec": {"values": {"revision": "a"}}}, "ns", None, "spec.values.revision"),
])
def test_render_refuses_conflicts(iop, namespace, revision, match):
    with pytest.raises(istioctl.IstioctlError, match=match):
        istioctl.render(iop, namespace, revision)


def test_fingerprint_is_canonical_and_covers_the_version():
    a = {"spec": {"values": {"x": 1, "y": 2}, "profile": "default"}}
    b = json.loads('{"spec": {"profile": "default", "values": {"y": 2, "x": 1}}}')
    assert istioctl.fingerprint(a, "1.31.0") == istioctl.fingerprint(b, "1.31.0")
    assert istioctl.fingerprint(a, "1.31.0") != istioctl.fingerprint(a, "1.31.1")
    assert istioctl.fingerprint(a, "1.31.0") != istioctl.fingerprint({"spec": {"profile": "default"}}, "1.31.0")


def test_state_configmap_round_trip():
    iop = istioctl.render({"spec": {"profile": "remote"}}, "istio-system", "r1")
    cm = istioctl.state_configmap("istio-system", "r1", iop, "1.31.0")
    assert cm["metadata"]["name"] == "meshops-istio-install-r1"
    assert cm["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshops.istio"}
    assert istioctl.stored(cm) == (istioctl.fingerprint(iop, "1.31.0"), iop, "1.31.0")
    assert istioctl.stored(None) == (None, None, None)
    assert istioctl.stored({"data": {"iop.json": "{not json"}})[1] is None


def test_control_plane_object():
    assert istioctl.control_plane_object({"spec": {"profile": "default"}}, "ns") == ("apps/v1", "Deployment", "istiod", "ns")
    assert istioctl.control_plane_object({"spec": {}}, "ns", "r1")[2:] == ("istiod-r1", "ns")
    assert istioctl.control_plane_object({"spec": {"profile": "remote"}}, "ns", "r1") == (
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-sidecar-injector-r1", None)


def test_version_and_commands():
    assert istioctl.parse_version('{"clientVersion": {"version": "1.31.0"}}') == "1.31.0"
    with pytest.raises(istioctl.IstioctlError):
        istioctl.parse_version("Error: unknown flag")
    conn = istioctl.connection_args("/kc", "ctx", "alice", ["g1", "g2"])
    assert conn == ["--kubeconfig", "/kc", "--context", "ctx", "--as", "alice", "--as-group", "g1", "--as-group", "g2"]
    assert istioctl.install_command("istioctl", "/t/iop.json", ["--context", "c"], "5m0s") == [
        "istioctl", "install", "-y", "-f", "/t/iop.json", "--context", "c", "--readiness-timeout", "5m0s"]
    assert istioctl.uninstall_command("istioctl", "istio-system", None, []) == [
        "istioctl", "uninstall", "-y", "--revision", "default", "--istioNamespace", "istio-system"]
