# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revision tags and canary upgrades in the topology model: the inventory's tags, the tags against the clusters, what
verify finds wrong with them, and each upgrade stage against what the clusters hold (pure logic, no cluster)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import topology

TAGS = {"prod-stable": "1-29-6", "prod-canary": "1-29-6"}


def plan(revision="1-29-6", tags="declared", version="1.29.6", **mesh):
    tags = dict(TAGS) if tags == "declared" else tags
    common = dict(mesh)
    for key, value in (("istio_revision", revision), ("istio_revision_tags", tags), ("istio_version", version)):
        if value is not None:
            common[key] = value
    hosts = {"c1": dict(kube_context="k1", istio_network="n1", **common), "c2": dict(kube_context="k2", istio_network="n2", **common)}
    return topology.plan_mesh(hosts, {"istio_primary": ["c1", "c2"]}, "multi_primary")


def fact(revisions=("1-29-6",), tags=None, proxies=None, app_version="1.29.6", n=1):
    releases = dict(("istiod-%s" % r, {"app_version": app_version if r == "1-29-6" else "1.30.3"}) for r in revisions)
    return {"reachable": True, "server": "https://203.0.113.%d:6443" % n, "version": "v1.34.0", "minor": [1, 34],
            "revisions": list(revisions), "revision_tags": dict(TAGS if tags is None else tags), "proxy_revisions": proxies or {},
            "helm_releases": releases}


def facts(**kw):
    return {"c1": fact(n=1, **kw), "c2": fact(n=2, **kw)}


def problems(fn):
    with pytest.raises(topology.MeshError) as err:
        fn()
    return [(p.host, p.field, p.message) for p in err.value.problems]


# --- istio_revision_tags ------------------------------------------------------------------------

def test_tags_unset_mean_leave_alone_and_empty_means_none():
    assert plan(tags=None)["revision_tags"] is None
    assert plan(tags={})["revision_tags"] == {}
    assert plan()["revision_tags"] == TAGS


@pytest.mark.parametrize("tags, field, fragment", [
    ("prod-stable", "istio_revision_tags", "must be a mapping"),
    ({"Prod_Stable": "1-29-6"}, "istio_revision_tags.Prod_Stable", "is not a DNS-1123 label"),
    ({"prod-stable": "1.29.6"}, "istio_revision_tags.prod-stable", "is not a revision name"),
    ({"prod-stable": None}, "istio_revision_tags.prod-stable", "is not a revision name"),
])
def test_bad_tags_name_the_field(tags, field, fragment):
    found = problems(lambda: plan(tags=tags))
    assert [(h, f) for h, f, m in found] == [(None, field)] and fragment in found[0][2], found


def test_a_tag_needs_its_revision_in_every_cluster():
    p = plan(tags={"prod-stable": "1-30-3"})
    found = problems(lambda: topology.check_live(p, facts()))
    assert [(h, f) for h, f, m in found] == [("c1", "istio_revision_tags.prod-stable"), ("c2", "istio_revision_tags.prod-stable")]
    assert "names revision '1-30-3', which this cluster does not have (it has 1-29-6)" in found[0][2]
    # The revision this run installs counts.
    topology.check_live(plan(revision="1-30-3", tags={"prod-stable": "1-30-3"}), facts())


def test_a_tag_cannot_be_named_like_a_revision():
    found = problems(lambda: topology.check_live(plan(tags={"1-29-6": "1-29-6"}), facts()))
    assert "has the name of a revision" in found[0][2]


def test_the_default_tag_cannot_sit_beside_the_unrevisioned_control_plane():
    found = problems(lambda: topology.check_live(plan(revision=None, tags={"default": "default"}), facts(revisions=("default",))))
    assert "already is the default revision" in found[0][2]
    # In a mesh of revisions only, it is what istio-injection=enabled namespaces use.
    topology.check_live(plan(tags={"default": "1-29-6"}), facts())


def test_tag_problems():
    live = {"c1": {"prod-stable": "1-29-6", "extra": "a"}, "c2": {"prod-stable": "1-30-3", "extra": "b"}}
    assert topology.tag_problems("c1", {"prod-stable": "1-29-6"}, live) == [
        "revision tag extra points at a here but at b on c2"]
    assert topology.tag_problems("c2", {"prod-stable": "1-29-6", "prod-canary": "1-29-6"}, live) == [
        "revision tag prod-canary points at nothing (missing), not 1-29-6 as istio_revision_tags says",
        "revision tag prod-stable points at 1-30-3, not 1-29-6 as istio_revision_tags says",
        "revision tag extra points at b here but at a on c1"]
    assert topology.tag_problems("c1", None, {"c1": {}, "c2": {}}) == []


def test_a_revisions_only_mesh_gets_a_default_revision_for_the_base_chart():
    p = topology.check_live(plan(revision="1-29-6", tags=None), facts(revisions=()))
    assert p["clusters"]["c1"]["install"]["base"]["defaultRevision"] == "1-29-6"
    # A revision installed beside it leaves it on the first one.
    p = topology.check_live(plan(revision="1-30-3", tags=None), facts())
    assert p["clusters"]["c1"]["install"]["base"]["defaultRevision"] == "1-29-6"
    # The unrevisioned control plane is the chart's own default.
    p = topology.check_live(plan(revision="canary", tags=None), facts(revisions=("default",)))
    assert "defaultRevision" not in p["clusters"]["c1"]["install"]["base"]


# --- upgrades -----------------------------------------------------------------------------------

def upgrade(stage_, live=None, p=None, **options):
    p = p or plan()
    live = live or facts()
    topology.check_live(p, live)
    opts = dict(to="1.30.3", stage=stage_, charts="/charts/1.30.3")
    opts.update(options)
    return topology.plan_upgrade(p, live, opts)


def test_install_stage():
    u = upgrade("install")
    assert (u["from"], u["to"]) == ({"version": "1.29.6", "revision": "1-29-6"},
                                    {"version": "1.30.3", "revision": "1-30-3", "charts": "/charts/1.30.3"})
    assert u["steps"] == {"install": True, "canary": None, "promote": None, "rollback": None, "remove": None}
    assert u["inventory_after"] is None and u["model"] == "multi_primary"


def test_tag_stages():
    both = facts(revisions=("1-29-6", "1-30-3"))
    assert upgrade("canary", both)["steps"]["canary"] == {"prod-stable": "1-29-6", "prod-canary": "1-30-3"}
    assert upgrade("promote", both)["steps"]["promote"] == {"prod-stable": "1-30-3", "prod-canary": "1-30-3"}
    u = upgrade("rollback", both)
    assert u["steps"]["rollback"] == TAGS and u["steps"]["remove"] == "1-30-3"


def test_all_stages_at_once_need_restarts_while_pods_use_the_old_revision():
    found = problems(lambda: upgrade("all", facts(proxies={"1-29-6": 3})))
    assert [(h, f) for h, f, m in found] == [(None, "istio_upgrade_restart")]
    u = upgrade("all", facts(proxies={"1-29-6": 3}), restart=True)
    assert u["steps"]["install"] and u["steps"]["remove"] == "1-29-6" and u["restart"] is True
    assert u["inventory_after"] == {"istio_version": "1.30.3", "istio_revision": "1-30-3",
                                    "istio_revision_tags": {"prod-stable": "1-30-3", "prod-canary": "1-30-3"}}


def test_remove_needs_the_tags_moved_and_no_proxy_left():
    moved = {"prod-stable": "1-30-3", "prod-canary": "1-30-3"}
    found = problems(lambda: upgrade("remove", facts(revisions=("1-29-6", "1-30-3"), tags={"prod-stable": "1-29-6", "prod-canary": "1-30-3"})))
    assert found[0][:2] == ("c1", "istio_upgrade_stage") and "prod-stable do not point at 1-30-3 yet" in found[0][2]
    found = problems(lambda: upgrade("remove", facts(revisions=("1-29-6", "1-30-3"), tags=moved, proxies={"1-29-6": 2})))
    assert "2 pod(s) still run proxies of revision 1-29-6" in found[0][2]
    assert upgrade("remove", facts(revisions=("1-29-6", "1-30-3"), tags=moved))["steps"]["remove"] == "1-29-6"
    # Again, once it is gone: nothing to do.
    u = upgrade("remove", facts(revisions=("1-30-3",), tags=moved))
    assert u["steps"]["remove"] is None and u["summary"] == ["revision 1-29-6 is already gone: nothing to do"]


def test_stages_that_need_the_new_revision_say_to_install_it():
    found = problems(lambda: upgrade("canary"))
    assert [(h, f) for h, f, m in found] == [("c1", "istio_upgrade_stage"), ("c2", "istio_upgrade_stage")]
    assert "run istio_upgrade_stage=install first" in found[0][2]


def test_rollback_after_remove_is_refused():
    found = problems(lambda: upgrade("rollback", facts(revisions=("1-30-3",))))
    assert "nothing to roll back to" in found[0][2]


@pytest.mark.parametrize("options, p_kw, field, fragment", [
    (dict(to="1.29.1"), {}, "istio_upgrade_to", "is not newer than istio_version 1.29.6"),
    (dict(to="1.32.0"), {}, "istio_upgrade_to", "Istio supports canary upgrades across at most 2: upgrade to 1.31 first"),
    (dict(to="2.0.0"), {}, "istio_upgrade_to", "is not newer"),
    (dict(to=None), {}, "istio_upgrade_to", "(unset) is not an Istio version"),
    (dict(stage="later"), {}, "istio_upgrade_stage", "is not a stage"),
    (dict(revision="1-29-6"), {}, "istio_upgrade_revision", "is the revision running now"),
    (dict(charts=""), {}, "istio_upgrade_charts", "say where the 1.30.3 charts are"),
    (dict(canary_tag="prod-stable"), {}, "istio_upgrade_canary_tag", "is the stable tag too"),
    (dict(restart="maybe"), {}, "istio_upgrade_restart", "is not a boolean"),
    ({}, dict(tags={"prod-canary": "1-29-6"}), "istio_revision_tags", "must declare the stable tag on the running revision"),
    ({}, dict(version=None), "istio_version", "is unset"),
    ({}, dict(istio_install_method="istioctl"), "istio_install_method", "not supported by playbooks/upgrade.yml yet"),
])
def test_bad_upgrade_options_name_the_variable(options, p_kw, field, fragment):
    found = problems(lambda: upgrade("install", p=plan(**p_kw), **options))
    assert field in [f for h, f, m in found] and any(fragment in m for h, f, m in found), found


def test_the_running_version_must_be_what_the_inventory_says():
    found = problems(lambda: upgrade("install", facts(app_version="1.29.5")))
    assert found[0][:2] == ("c1", "istio_version") and "release istiod-1-29-6 runs 1.29.5 here" in found[0][2]


def test_two_minor_releases_at_once_are_a_canary_upgrade_istio_supports():
    assert upgrade("install", p=plan(version="1.28.2"), live=facts(app_version="1.28.2"))["to"]["revision"] == "1-30-3"
