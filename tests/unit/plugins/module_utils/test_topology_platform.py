# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenShift: declared or detected per cluster, and the chart values each platform gets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import topology


def fact(openshift=False):
    return {"reachable": True, "server": "https://203.0.113.1:6443", "version": "v1.34.0", "minor": [1, 34], "openshift": openshift}


def plan(model="multi_primary", c2=None, remote=False, **mesh):
    hosts = {"c1": dict(kube_context="k1", **mesh), "c2": dict(kube_context="k2", **dict(mesh, **(c2 or {})))}
    groups = {"istio_primary": ["c1"], "istio_remote": ["c2"]} if remote else {"istio_primary": ["c1", "c2"]}
    if remote:
        hosts["c2"]["istio_network"] = hosts["c1"]["istio_network"] = "n1"
    return topology.plan_mesh(hosts, groups, "primary_remote" if remote else model)


def test_platform_is_unknown_until_detected_and_kubernetes_values_are_untouched():
    p = plan()
    assert p["clusters"]["c1"]["platform"] is None
    before = p["clusters"]["c1"]["install"]
    topology.check_live(p, {"c1": fact(), "c2": fact()})
    c1 = p["clusters"]["c1"]
    assert c1["platform"] == "kubernetes"
    assert c1["install"] is before and c1["install"]["cni"] is None
    assert "platform" not in c1["install"]["istiod"]["global"]
    assert c1["install"]["node_namespace"] == "istio-system"


def test_detected_openshift_gets_the_openshift_platform_and_istio_cni_in_kube_system():
    p = topology.check_live(plan(), {"c1": fact(), "c2": fact(openshift=True)})
    c2 = p["clusters"]["c2"]["install"]
    assert p["clusters"]["c2"]["platform"] == "openshift"
    assert c2["istiod"]["global"]["platform"] == "openshift"
    assert c2["istiod"]["global"]["meshID"] == "mesh1", "the platform is added, nothing replaced"
    assert c2["base"] == {"global": {"platform": "openshift"}}
    # Sidecars on OpenShift need the CNI node agent (the charts' openshift profile turns pilot.cni on).
    assert c2["cni"] == {"global": {"platform": "openshift"}}
    assert c2["ztunnel"] is None
    assert c2["node_namespace"] == "kube-system"
    assert p["clusters"]["c1"]["install"]["cni"] is None, "the other cluster stays a plain Kubernetes one"


def test_ambient_on_openshift_keeps_the_ambient_profile_and_sets_ztunnels_own_platform_value():
    p = plan(model="ambient", istio_network="n1", istio_gateway_api_version="v1.5.1", c2={"istio_platform": "openshift", "istio_network": "n2"})
    install = p["clusters"]["c2"]["install"]
    assert install["cni"] == {"profile": "ambient", "global": {"platform": "openshift"}}
    # ztunnel's RBAC template reads the top-level value, its profile the global one.
    assert install["ztunnel"]["platform"] == "openshift" and install["ztunnel"]["global"]["platform"] == "openshift"
    assert install["ztunnel"]["multiCluster"] == {"clusterName": "c2"}
    assert install["istiod"]["profile"] == "ambient"


def test_revisioned_openshift_cni_carries_the_revision():
    p = plan(c2={"istio_platform": "openshift"}, istio_revision="canary")
    assert p["clusters"]["c2"]["install"]["cni"] == {"revision": "canary", "global": {"platform": "openshift"}}


def test_remote_profile_on_openshift():
    p = topology.check_live(plan(remote=True), {"c1": fact(), "c2": fact(openshift=True)})
    install = p["clusters"]["c2"]["install"]
    assert install["istiod"]["profile"] == "remote" and install["istiod"]["global"]["platform"] == "openshift"
    assert install["base"] == {"profile": "remote", "global": {"platform": "openshift"}}


def test_declared_platform_needs_no_detection_but_must_match_it():
    p = plan(c2={"istio_platform": "openshift"})
    assert p["clusters"]["c2"]["platform"] == "openshift"
    assert p["clusters"]["c2"]["install"]["istiod"]["global"]["platform"] == "openshift"
    with pytest.raises(topology.MeshError) as err:
        topology.check_live(p, {"c1": fact(openshift=True), "c2": fact(openshift=False)})
    assert [(x.host, x.field) for x in err.value.problems] == [("c2", "istio_platform")]
    assert "does not serve OpenShift" in str(err.value)
    p = plan(c2={"istio_platform": "kubernetes"})
    with pytest.raises(topology.MeshError) as err:
        topology.check_live(p, {"c1": fact(), "c2": fact(openshift=True)})
    assert "c2: istio_platform: 'kubernetes', but the cluster serves OpenShift" in str(err.value)


@pytest.mark.parametrize("value", ["OpenShift", "okd", 3])
def test_bad_platform_names_host_and_field(value):
    with pytest.raises(topology.MeshError) as err:
        plan(c2={"istio_platform": value})
    assert [(x.host, x.field) for x in err.value.problems] == [("c2", "istio_platform")]
    assert "auto, kubernetes, openshift" in str(err.value)
