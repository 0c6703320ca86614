# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh report: what it concludes from the modules' results, and that the picture and page carry all of it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import report, topology

NOW = 1800000000
DAY = 86400


def plan(model="primary_remote"):
    hosts = {
        "c1": {"kube_context": "k1", "istio_network": "net-a"},
        "c2": {"kube_context": "k2", "istio_network": "net-b"},
        "r1": {"kube_context": "k3", "istio_network": "net-a", "istio_primary_cluster": "c1"},
    }
    groups = {"istio_primary": ["c1", "c2"], "istio_remote": ["r1"]}
    return topology.plan_mesh(hosts, groups, model)


def istiod(pod, rows, gateways=()):
    return {"istiods": [{"pod": pod, "clusters": [{"id": i, "syncStatus": s, "secretName": "" if local else "istio-system/x"}
                                                  for i, s, local in rows],
                         "gateways": [{"Network": n, "Addr": a, "Port": 15443} for n, a in gateways]}]}


def secret(cid, token_type="legacy", expires=None):
    return {"secret": "istio-remote-secret-%s" % cid, "cluster_id": cid, "server": "https://%s:6443" % cid,
            "auth": "token", "token_type": token_type, "expires": expires, "managed_by": "meshops.istio"}


def gathered():
    return {
        "c1": {"info": {"reachable": True, "server": "https://c1:6443", "version": "v1.34.2"},
               "gateway": {"address": "192.0.2.1"},
               "istiod": istiod("istiod-a", [("c1", "synced", True), ("c2", "synced", False), ("r1", "timeout", False)]),
               "secrets": {"secrets": [secret("c2"), secret("r1", "token_request", NOW + 30 * DAY)]}},
        "c2": {"info": {"reachable": True, "server": "https://c2:6443", "version": "v1.34.2"},
               "gateway": {"address": "192.0.2.2"},
               "istiod": istiod("istiod-b", [("c2", "synced", True), ("c1", "synced", False)]),
               # the one for r1 is missing; one for a cluster not in the inventory, expiring tomorrow
               "secrets": {"secrets": [secret("c1"), secret("old", "token_request", NOW + DAY)]}},
        "r1": {"info": {"reachable": True, "server": "https://r1:6443", "version": "v1.34.2"},
               "gateway": {"address": "192.0.2.3"}, "istiod": {"skipped": True}, "secrets": {"secrets": []}},
    }


def test_token_notes():
    assert report.token_note("legacy", None, NOW) == "does not expire (legacy token Secret)"
    assert report.token_note("token_request", NOW + 2 * DAY, NOW) == "expires 2027-01-17T08:00:00Z (in 2.0 days)"
    assert report.token_note("token_request", NOW - 1, NOW).startswith("EXPIRED at ")
    assert report.token_note("none", None, NOW) == "no bearer token"


def test_report_data_edges_sync_and_expiry():
    r = report.build_report(plan(), gathered(), NOW)
    assert [c["cluster_id"] for c in r["clusters"]] == ["c1", "r1", "c2"]  # by network, primaries first
    assert r["networks"] == {"net-a": ["c1", "r1"], "net-b": ["c2"]}
    by = dict((c["cluster_id"], c) for c in r["clusters"])
    assert by["r1"]["role"] == "remote" and by["r1"]["primary"] == "c1"
    assert by["c1"]["eastwest_gateway"] == {"address": "192.0.2.1", "port": 15443}
    held = dict((s["cluster_id"], s) for s in by["c1"]["secrets_held"])
    assert held["c2"]["sync"] == "synced" and held["c2"]["token"] == "does not expire (legacy token Secret)"
    assert held["r1"]["sync"] == "timeout" and held["r1"]["expires_at"] == "2027-02-14T08:00:00Z"
    assert sorted((e["holder"], e["cluster"], e["sync"]) for e in r["secrets"]) == [
        ("c1", "c2", "synced"), ("c1", "r1", "timeout"), ("c2", "c1", "synced"), ("c2", "old", "not loaded")]
    assert sorted(r["problems"]) == sorted([
        "c1: istiod istiod-a reports cluster r1 timeout",
        "c2: holds a secret for cluster old, which is not in the inventory",
        "c2: the token it holds for old expires 2027-01-16T08:00:00Z (in 1.0 days)",
        "c2: holds no remote secret for r1, which the plan requires",
    ])
    json.dumps(r)  # the JSON file is this document


def test_unreachable_cluster_and_missing_istiod_are_problems():
    g = gathered()
    g["c2"] = {"info": {"reachable": False, "error": "connection refused"}, "gateway": {"skipped": True},
               "istiod": {"skipped": True}, "secrets": {"skipped": True}}
    g["c1"]["istiod"] = {"failed": False, "msg": "no Running istiod pod in namespace istio-system", "istiods": []}
    r = report.build_report(plan(), g, NOW)
    assert "c2: cluster unreachable: connection refused" in r["problems"]
    assert "c1: no running istiod: no Running istiod pod in namespace istio-system" in r["problems"]
    # nothing is claimed missing on a cluster that could not be read
    assert not [p for p in r["problems"] if p.startswith("c2: holds no")]
    by = dict((c["cluster_id"], c) for c in r["clusters"])
    assert by["c1"]["secrets_held"][0]["sync"] == "no istiod"


@pytest.mark.skipif(not report.HAS_DRAWSVG, reason="drawsvg is not installed")
def test_picture_has_every_cluster_network_gateway_and_one_arrow_per_secret():
    r = report.build_report(plan(), gathered(), NOW)
    svg = report.render_svg(r)
    root = ET.fromstring(svg.encode("utf-8"))  # well-formed
    ns = "{http://www.w3.org/2000/svg}"
    text = " ".join(t.text or "" for t in root.iter(ns + "text"))
    for word in ("c1", "c2", "r1", "network net-a", "network net-b", "192.0.2.1:15443", "192.0.2.2:15443",
                 "192.0.2.3:15443", "remote of c1", "token never expires (legacy)", "token expires 2027-02-14 (30 d)"):
        assert word in text, word
    groups = [g.get("id") for g in root.iter(ns + "g")]
    assert {"network-net-a", "network-net-b", "cluster-c1", "cluster-c2", "cluster-r1"} <= set(groups)
    arrows = [p for p in root.iter(ns + "path") if p.get("class") == "secret"]
    # "old" is not in the mesh, so it has no box to point at; the three others are drawn
    assert len(arrows) == 3
    titles = sorted(p.find(ns + "title").text for p in arrows)
    assert titles[0] == "c1 holds a secret for c2 (synced, token legacy)"
    colours = dict((p.find(ns + "title").text.split(" (")[0], p.get("stroke")) for p in arrows)
    assert colours["c1 holds a secret for r1"] == report.COLOURS["problem"]
    assert colours["c2 holds a secret for c1"] == report.COLOURS["synced"]


@pytest.mark.skipif(not report.HAS_DRAWSVG, reason="drawsvg is not installed")
def test_boxes_do_not_overlap_at_eight_clusters():
    hosts = dict(("c%d" % i, {"kube_context": "k%d" % i, "istio_network": "n%d" % (i % 3)}) for i in range(8))
    p = topology.plan_mesh(hosts, {"istio_primary": sorted(hosts)}, "multi_primary")
    boxes, nets, width, height = report.layout(report.build_report(p, {}, NOW))
    rects = list(boxes.values())
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
        assert a[0] + a[2] <= width and a[1] + a[3] <= height
    assert len(nets) == 3


def test_html_escapes_and_embeds_the_json():
    r = report.build_report(plan(), gathered(), NOW)
    r["mesh_id"] = "<mesh>"
    page = report.render_html(r, '<?xml version="1.0"?>\n<svg id="s"></svg>')
    assert "&lt;mesh&gt;" in page and "<mesh>" not in page.replace('"mesh_id": "<mesh>"', "")
    assert page.count("<svg") == 1 and "<?xml" not in page
    data = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    assert json.loads(data.replace("<\\/", "</"))["secrets"] == r["secrets"]


def test_each_cluster_lists_its_proxies_and_their_istiod():
    g = gathered()
    synced = {"CDS": "SYNCED", "LDS": "SYNCED", "EDS": "SYNCED", "RDS": "SYNCED"}
    g["c1"]["istiod"]["istiods"][0]["proxies"] = [
        {"proxy": "curl-1.sample", "cluster_id": "r1", "type": "sidecar", "version": "1.30.3", "status": synced},
        {"proxy": "hello-1.sample", "cluster_id": "c1", "type": "sidecar", "version": "1.30.3", "status": dict(synced, EDS="STALE")}]
    r = report.build_report(plan(), g, NOW)
    by = dict((c["cluster_id"], c) for c in r["clusters"])
    # A remote's proxy is listed under the remote, served by its primary's istiod.
    assert [(p["proxy"], p["istiod"]) for p in by["r1"]["proxies"]] == [("curl-1.sample", "c1/istiod-a")]
    assert [p["proxy"] for p in by["c1"]["proxies"]] == ["hello-1.sample"] and by["c2"]["proxies"] == []
    page = report.render_html(r, "<svg></svg>")
    assert "curl-1.sample 1.30.3 (c1/istiod-a; SYNCED)" in page and "hello-1.sample 1.30.3 (c1/istiod-a; EDS STALE)" in page
