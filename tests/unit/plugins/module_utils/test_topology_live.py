# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight on what the clusters answered: every problem at once, API servers filled in from the contexts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import topology


def plan(**mesh):
    hosts = {"c1": dict(kube_context="k1", **mesh), "c2": dict(kube_context="k2", **mesh),
             "c3": dict(kube_context="k3", istio_api_server="https://203.0.113.3:6443", **mesh)}
    return topology.plan_mesh(hosts, {"istio_primary": ["c1", "c2", "c3"]}, "multi_primary")


def fact(server="https://203.0.113.1:6443", minor=(1, 34)):
    return {"reachable": True, "server": server, "version": "v%d.%d.0" % minor, "minor": list(minor)}


def test_fills_api_server_from_context():
    p = topology.check_live(plan(), {"c1": fact(), "c2": fact("https://203.0.113.2:6443"), "c3": fact("https://10.0.0.3")})
    assert p["clusters"]["c1"]["api_server"] == "https://203.0.113.1:6443"
    assert p["clusters"]["c2"]["api_server"] == "https://203.0.113.2:6443"
    assert p["clusters"]["c3"]["api_server"] == "https://203.0.113.3:6443", "the inventory's URL wins"


def test_reports_every_problem_together():
    with pytest.raises(topology.MeshError) as err:
        topology.check_live(plan(), {"c1": {"reachable": False, "error": "connection refused"},
                                     "c2": fact("https://127.0.0.1:6443", minor=(1, 20))})
    text = str(err.value)
    assert "c1: kube_context: cluster unreachable" in text and "connection refused" in text
    assert "c2: kube_context: Kubernetes v1.20.0 is too old" in text
    assert "c2: istio_api_server:" in text and "loopback" in text
    # c3 said nothing at all: unreachable as well
    assert [(p.host, p.field) for p in err.value.problems] == [("c1", "kube_context"), ("c2", "kube_context"), ("c2", "istio_api_server"),
                                                               ("c3", "kube_context")]


def test_loopback_allowed_in_a_lab():
    p = topology.check_live(plan(istio_allow_loopback_api_server=True),
                            {"c1": fact("https://127.0.0.1:20102"), "c2": fact("https://127.0.0.1:20202"), "c3": fact()})
    assert p["clusters"]["c1"]["api_server"] == "https://127.0.0.1:20102"


def test_remote_pilot_address_override():
    hosts = {"p": {"kube_context": "kp"}, "r": {"kube_context": "kr", "istio_remote_pilot_address": "istiod.example.com"},
             "r2": {"kube_context": "kr2"}}
    p = topology.plan_mesh(hosts, {"istio_primary": ["p"], "istio_remote": ["r", "r2"]}, "primary_remote")
    assert p["clusters"]["r"]["install"]["istiod"]["global"]["remotePilotAddress"] == "istiod.example.com"
    assert p["clusters"]["r2"]["install"]["istiod"]["global"]["remotePilotAddress"] is None, "filled in at runtime"
    assert "remote_pilot_address" not in p["clusters"]["p"]
    # set on the primary: how all its remotes reach it, unless a remote says otherwise
    hosts["p"]["istio_remote_pilot_address"] = "x.example.com"
    p = topology.plan_mesh(hosts, {"istio_primary": ["p"], "istio_remote": ["r", "r2"]}, "primary_remote")
    assert p["clusters"]["r2"]["install"]["istiod"]["global"]["remotePilotAddress"] == "x.example.com"
    assert p["clusters"]["r"]["install"]["istiod"]["global"]["remotePilotAddress"] == "istiod.example.com"
    assert "remotePilotAddress" not in p["clusters"]["p"]["install"]["istiod"]["global"]


def test_revisions_installed_in_the_mesh():
    facts = {"c1": dict(fact(), revisions=["canary", "default"]), "c2": dict(fact("https://203.0.113.2:6443"), revisions=["default"]),
             "c3": fact()}
    p = topology.check_live(plan(), facts)
    assert p["installed_revisions"] == {"c1": ["canary", "default"], "c2": ["default"], "c3": []}
    # Uninstalling the default revision: canary stays somewhere, so it takes over.
    assert p["other_revisions"] == ["canary"] and p["successor_revision"] == "canary"
    p = topology.check_live(plan(istio_revision="canary"), facts)
    assert p["other_revisions"] == ["default"] and p["successor_revision"] == "default"


def test_default_is_the_preferred_successor_and_a_lone_revision_has_none():
    facts = {"c1": dict(fact(), revisions=["1-30", "default", "canary"]), "c2": fact("https://203.0.113.2:6443"), "c3": fact()}
    p = topology.check_live(plan(istio_revision="canary"), facts)
    assert p["other_revisions"] == ["1-30", "default"] and p["successor_revision"] == "default"
    p = topology.check_live(plan(), {"c1": dict(fact(), revisions=["default"]), "c2": fact("https://203.0.113.2:6443"), "c3": fact()})
    assert p["other_revisions"] == [] and p["successor_revision"] is None
    assert topology.plan_mesh({"c1": {"kube_context": "k1"}}, {"istio_primary": ["c1"]}, "multi_primary")["other_revisions"] == []


def test_a_cluster_running_ambient_refuses_a_sidecar_model():
    facts = {"c1": fact(), "c2": dict(fact("https://203.0.113.2:6443"), ztunnel_namespaces=["istio-system"]), "c3": fact()}
    with pytest.raises(topology.MeshError) as err:
        topology.check_live(plan(), facts)
    assert [(p.host, p.field) for p in err.value.problems] == [("c2", "istio_model")]
    text = str(err.value)
    assert "ambient mode (DaemonSet ztunnel in istio-system)" in text and "plans the multi_primary model" in text
    assert "set istio_model=ambient" in text
    # The ambient model itself runs on it (only the plan's model matters to this rule).
    ambient = plan()
    ambient["model"] = "ambient"
    assert topology.check_live(ambient, facts) is ambient
