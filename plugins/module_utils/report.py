# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh report: what every cluster said, as one JSON document, an SVG picture of the topology and an HTML page.

Controller-side and pure: build_report() turns the plan and what the read-only modules returned per cluster into the
report; render_svg() and render_html() draw it. The picture uses drawsvg (pure Python, no system binary)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html
import json

try:
    import drawsvg
    HAS_DRAWSVG = True
except ImportError:
    drawsvg = None
    HAS_DRAWSVG = False

# A token that expires sooner than this is reported as a problem (rotate it).
EXPIRY_WARNING_SECONDS = 7 * 24 * 3600

COLOURS = {
    "synced": "#2e9d4c", "problem": "#d0342c", "unknown": "#8a8f98",
    "primary": "#dbe9ff", "primary_edge": "#2f6fd1", "remote": "#ffeccc", "remote_edge": "#d88a12",
    "network": "#f4f6f8", "network_edge": "#9aa4b2", "text": "#1d2430", "muted": "#4a5566",
}


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_note(token_type, expires, now):
    """A sentence about a held token's lifetime."""
    if token_type == "legacy":
        return "does not expire (legacy token Secret)"
    if token_type == "token_request" and expires is not None:
        left = expires - now
        if left <= 0:
            return "EXPIRED at %s" % _iso(expires)
        return "expires %s (in %.1f days)" % (_iso(expires), left / 86400.0)
    return "no bearer token"


def short_token_note(token_type, expires, now):
    """The same, short enough for the picture."""
    if token_type == "legacy":
        return "token never expires (legacy)"
    if token_type == "token_request" and expires is not None:
        left = expires - now
        return "token EXPIRED" if left <= 0 else "token expires %s (%.0f d)" % (_iso(expires)[:10], left / 86400.0)
    return "no bearer token"


def _result(data, key):
    """A registered result, or {} when the task was skipped or failed."""
    r = (data or {}).get(key) or {}
    return {} if r.get("skipped") else r


def build_report(plan, gathered, now):
    """The report (JSON-serialisable) from the plan and, per inventory host, the results of cluster_info ('info'),
    eastwest_gateway ('gateway'), istiod_status ('istiod') and remote_secrets_info ('secrets')."""
    by_id = dict((c["cluster_id"], host) for host, c in plan["clusters"].items())
    clusters, edges, problems = [], [], []
    served = []   # every istiod's proxies, each named with its istiod; listed under the cluster it runs in
    for host in sorted(plan["clusters"], key=lambda h: (plan["clusters"][h]["network"], plan["clusters"][h]["role"] != "primary", h)):
        c = plan["clusters"][host]
        data = gathered.get(host) or {}
        info, gw, st, held = (_result(data, k) for k in ("info", "gateway", "istiod", "secrets"))
        cid = c["cluster_id"]
        entry = dict(host=host, cluster_id=cid, network=c["network"], role=c["role"],
                     primary=plan["clusters"][c["primary"]]["cluster_id"] if c.get("primary") in plan["clusters"] else None,
                     api_server=info.get("server", ""), reachable=bool(info.get("reachable")),
                     kubernetes_version=info.get("version", ""), eastwest_gateway=None, istiods=[], secrets_held=[],
                     proxies=[])
        if not entry["reachable"]:
            problems.append("%s: cluster unreachable: %s" % (cid, info.get("error") or "no answer"))
        if gw.get("address"):
            entry["eastwest_gateway"] = dict(address=gw["address"], port=gw.get("port") or 15443)
        elif c.get("eastwest_gateway") and entry["reachable"]:
            problems.append("%s: east-west gateway for %s has no address" % (cid, c["network"]))
        # What each istiod of this cluster reports about every cluster it reads.
        status_of = {}
        for view in st.get("istiods") or []:
            rows = [dict(id=r.get("id"), status=r.get("syncStatus", "unknown"), local=not r.get("secretName"))
                    for r in view.get("clusters") or []]
            gws = [dict(network=g.get("Network"), address=g.get("Addr"), port=g.get("Port") or g.get("HBONEPort"))
                   for g in view.get("gateways") or []]
            entry["istiods"].append(dict(pod=view.get("pod", ""), clusters=rows, gateways=gws))
            served += [dict(proxy, istiod="%s/%s" % (cid, view.get("pod", ""))) for proxy in view.get("proxies") or []]
            for r in rows:
                status_of.setdefault(r["id"], []).append(r["status"])
                if r["status"] != "synced":
                    problems.append("%s: istiod %s reports cluster %s %s" % (cid, view.get("pod", ""), r["id"], r["status"]))
        if c["role"] == "primary" and entry["reachable"] and not entry["istiods"]:
            problems.append("%s: no running istiod%s" % (cid, (": %s" % st["msg"]) if st.get("msg") else ""))
        present = set()
        for s in held.get("secrets") or []:
            target = s.get("cluster_id")
            present.add(target)
            statuses = status_of.get(target) or []
            sync = ("synced" if statuses and all(x == "synced" for x in statuses)
                    else ",".join(sorted(set(statuses))) if statuses else "not loaded" if entry["istiods"] else "no istiod")
            expires = s.get("expires")
            row = dict(cluster_id=target, secret=s.get("secret"), server=s.get("server", ""), token_type=s.get("token_type"),
                       expires=expires, expires_at=_iso(expires) if expires is not None else None,
                       token=token_note(s.get("token_type"), expires, now),
                       token_short=short_token_note(s.get("token_type"), expires, now), managed_by=s.get("managed_by", ""),
                       sync=sync, in_mesh=target in by_id)
            entry["secrets_held"].append(row)
            edges.append(dict(holder=cid, cluster=target, sync=sync, token_type=row["token_type"], expires=expires))
            if target not in by_id:
                problems.append("%s: holds a secret for cluster %s, which is not in the inventory" % (cid, target))
            if expires is not None and expires - now < EXPIRY_WARNING_SECONDS:
                problems.append("%s: the token it holds for %s %s" % (cid, target, row["token"]))
        for missing in sorted(set(c.get("secrets_held") or []) - present):
            if entry["reachable"]:
                problems.append("%s: holds no remote secret for %s, which the plan requires" % (cid, missing))
        clusters.append(entry)
    # A remote's proxies are served by its primary's istiod.
    by_cluster = dict((e["cluster_id"], e) for e in clusters)
    for proxy in sorted(served, key=lambda x: x["proxy"]):
        if proxy.get("cluster_id") in by_cluster:
            by_cluster[proxy["cluster_id"]]["proxies"].append(proxy)
    return dict(mesh_id=plan.get("mesh_id"), model=plan.get("model"), generated=_iso(now),
                networks=dict((n, [plan["clusters"][h]["cluster_id"] for h in hosts]) for n, hosts in sorted(plan["networks"].items())),
                clusters=clusters, secrets=edges, problems=problems)


# ---- the picture ------------------------------------------------------------------------------------------------
BOX_W, LINE_H, PAD, COL_GAP, NET_PAD, TITLE_H = 370, 17, 10, 170, 18, 34
# Up to this many rows per istiod or held secrets are listed one by one; above, summarised (problems still listed).
DETAIL_ROWS = 3


def _box_lines(c):
    """(text, colour) lines inside a cluster's box."""
    role = "primary" if c["role"] == "primary" else "remote of %s" % (c["primary"] or "?")
    lines = [("%s  (%s)" % (c["cluster_id"], role), COLOURS["text"])]
    lines.append(("API %s  k8s %s" % (c["api_server"] or "?", c["kubernetes_version"] or "?") if c["reachable"]
                  else "UNREACHABLE", COLOURS["muted"] if c["reachable"] else COLOURS["problem"]))
    if c["eastwest_gateway"]:
        lines.append(("east-west gateway %s:%s" % (c["eastwest_gateway"]["address"], c["eastwest_gateway"]["port"]), COLOURS["text"]))
    for view in c["istiods"]:
        bad = [r for r in view["clusters"] if r["status"] != "synced"]
        if len(view["clusters"]) <= DETAIL_ROWS:
            lines.append(("istiod %s" % view["pod"], COLOURS["problem"] if bad else COLOURS["synced"]))
            shown = view["clusters"]
        else:  # a big mesh: one summary line, and every cluster that is not synced
            lines.append(("istiod %s: %d/%d clusters synced" % (view["pod"], len(view["clusters"]) - len(bad), len(view["clusters"])),
                          COLOURS["problem"] if bad else COLOURS["synced"]))
            shown = bad
        for r in shown:
            lines.append(("  %s %s%s" % (r["id"], r["status"], " (local)" if r["local"] else ""),
                          COLOURS["synced"] if r["status"] == "synced" else COLOURS["problem"]))
    held = c["secrets_held"]
    bad_sync = [s for s in held if s["sync"] != "synced" and c["istiods"]]
    if len(held) <= DETAIL_ROWS:
        for s in held:
            lines.append(("secret for %s: %s" % (s["cluster_id"], s["token_short"]), COLOURS["problem"] if s in bad_sync else COLOURS["muted"]))
    else:
        by_note = {}
        for s in held:
            by_note.setdefault(s["token_short"], []).append(s["cluster_id"])
        for note, ids in sorted(by_note.items()):
            lines.append(("secrets for %d cluster%s: %s" % (len(ids), "" if len(ids) == 1 else "s", note), COLOURS["muted"]))
        for s in bad_sync:
            lines.append(("secret for %s: %s" % (s["cluster_id"], s["sync"]), COLOURS["problem"]))
    return lines


def layout(report):
    """Positions: networks are columns; a network's clusters are stacked in it, primaries first."""
    boxes, nets = {}, []
    x = PAD
    height = 0
    for net in sorted(report["networks"]):
        y = PAD + TITLE_H
        for c in [c for c in report["clusters"] if c["network"] == net]:
            h = PAD * 2 + LINE_H * len(_box_lines(c))
            boxes[c["cluster_id"]] = (x + NET_PAD, y, BOX_W, h)
            y += h + NET_PAD
        nets.append((net, x, PAD, BOX_W + 2 * NET_PAD, y - PAD))
        height = max(height, y)
        x += BOX_W + 2 * NET_PAD + COL_GAP
    # Room on the right for the loops of the last column, and below for the legend.
    return boxes, nets, x - COL_GAP + PAD + 110, height + PAD + 60


def render_svg(report):
    """The topology as an SVG document (a string)."""
    if not HAS_DRAWSVG:
        raise RuntimeError("the Python package drawsvg is needed to draw the report (pip install drawsvg)")
    boxes, nets, width, height = layout(report)
    d = drawsvg.Drawing(width, height, font_family="DejaVu Sans, Arial, sans-serif")
    d.append(drawsvg.Rectangle(0, 0, width, height, fill="#ffffff"))
    markers = {}
    for key in ("synced", "problem", "unknown"):
        m = drawsvg.Marker(-0.1, -0.51, 0.9, 0.5, scale=7, orient="auto")
        m.append(drawsvg.Lines(-0.1, 0.5, -0.1, -0.5, 0.9, 0, fill=COLOURS[key], close=True))
        markers[key] = m
    for net, x, y, w, h in nets:
        g = drawsvg.Group(id="network-%s" % net)
        g.append(drawsvg.Rectangle(x, y, w, h, rx=10, fill=COLOURS["network"], stroke=COLOURS["network_edge"], stroke_width=1.5))
        g.append(drawsvg.Text("network %s" % net, 15, x + 12, y + 22, font_weight="bold", fill=COLOURS["muted"]))
        d.append(g)
    # One arrow per remote secret, holder -> the cluster it reads; bidirectional pairs are drawn apart.
    for n, e in enumerate(report["secrets"]):
        if e["holder"] not in boxes or e["cluster"] not in boxes:
            continue
        key = "synced" if e["sync"] == "synced" else "problem" if e["sync"] not in ("no istiod",) else "unknown"
        hx, hy, hw, hh = boxes[e["holder"]]
        tx, ty, tw, th = boxes[e["cluster"]]
        shift = 10 if e["holder"] < e["cluster"] else -10
        path = drawsvg.Path(stroke=COLOURS[key], stroke_width=2, fill="none", marker_end=markers[key], opacity=0.85, class_="secret")
        if hx == tx:  # same network column: loop out on the right
            y1, y2 = hy + hh / 2 + shift, ty + th / 2 + shift
            bulge = hx + hw + 40 + 12 * (n % 5)
            path.M(hx + hw, y1).C(bulge, y1, bulge, y2, tx + tw + 6, y2)
        else:
            left_to_right = hx < tx
            x1 = hx + hw if left_to_right else hx
            x2 = tx - 6 if left_to_right else tx + tw + 6
            y1, y2 = hy + hh / 2 + shift, ty + th / 2 + shift
            mid = (x1 + x2) / 2
            path.M(x1, y1).C(mid, y1, mid, y2, x2, y2)
        path.append_title("%s holds a secret for %s (%s, token %s)" % (e["holder"], e["cluster"], e["sync"], e["token_type"]))
        d.append(path)
    for c in report["clusters"]:
        x, y, w, h = boxes[c["cluster_id"]]
        kind = "primary" if c["role"] == "primary" else "remote"
        g = drawsvg.Group(id="cluster-%s" % c["cluster_id"])
        g.append(drawsvg.Rectangle(x, y, w, h, rx=6, fill=COLOURS[kind], stroke=COLOURS[kind + "_edge"], stroke_width=2.5,
                                   stroke_dasharray=None if c["reachable"] else "6,4"))
        for i, (text, colour) in enumerate(_box_lines(c)):
            g.append(drawsvg.Text(text, 13 if i else 14, x + PAD, y + PAD + LINE_H * (i + 1) - 4, fill=colour,
                                  font_weight="bold" if i == 0 else "normal"))
        d.append(g)
    # Legend.
    ly = height - 40
    items = [("primary", COLOURS["primary"], COLOURS["primary_edge"]), ("remote", COLOURS["remote"], COLOURS["remote_edge"])]
    lx = PAD
    for label, fill, edge in items:
        d.append(drawsvg.Rectangle(lx, ly, 22, 14, fill=fill, stroke=edge, stroke_width=2))
        d.append(drawsvg.Text(label, 13, lx + 28, ly + 12, fill=COLOURS["text"]))
        lx += 110
    for label, key in (("X holds a secret for Y, istiod synced", "synced"), ("not synced", "problem")):
        d.append(drawsvg.Line(lx, ly + 7, lx + 34, ly + 7, stroke=COLOURS[key], stroke_width=2, marker_end=markers[key]))
        d.append(drawsvg.Text(label, 13, lx + 50, ly + 12, fill=COLOURS["text"]))
        lx += 320
    d.append(drawsvg.Text("mesh %s (%s), %s" % (report["mesh_id"], report["model"], report["generated"]), 12, PAD, height - 10,
                          fill=COLOURS["muted"]))
    return d.as_svg()


def _sync_word(status):
    """SYNCED when every xDS type is, else the types that are not, as istioctl proxy-status would show them."""
    off = ["%s %s" % (t, v) for t, v in sorted((status or {}).items()) if v != "SYNCED"]
    return ", ".join(off) if off else "SYNCED"


def render_html(report, svg):
    """A self-contained page: the picture, a table per cluster, the problems."""
    e = html.escape
    rows = []
    for c in report["clusters"]:
        gw = "%s:%s" % (c["eastwest_gateway"]["address"], c["eastwest_gateway"]["port"]) if c["eastwest_gateway"] else "—"
        sync = "<br>".join("%s: %s" % (e(v["pod"]), ", ".join("%s=%s" % (e(r["id"]), e(r["status"])) for r in v["clusters"]))
                           for v in c["istiods"]) or "—"
        held = "<br>".join("%s (%s; %s)" % (e(s["cluster_id"]), e(s["sync"]), e(s["token"])) for s in c["secrets_held"]) or "—"
        proxies = "<br>".join("%s %s (%s; %s)" % (e(p["proxy"]), e(p["version"]), e(p["istiod"]), e(_sync_word(p["status"])))
                              for p in c.get("proxies") or []) or "—"
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            e(c["cluster_id"]), e(c["network"]), e(c["role"] + (" of %s" % c["primary"] if c["primary"] else "")),
            e(c["api_server"]) if c["reachable"] else "<b>unreachable</b>", e(gw), sync, held, proxies))
    problems = "".join("<li>%s</li>" % e(p) for p in report["problems"]) or '<li class="ok">none</li>'
    svg_body = svg[svg.index("<svg"):] if "<svg" in svg else svg
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Istio mesh %(mesh)s</title>
<style>body{font-family:DejaVu Sans,Arial,sans-serif;margin:16px;color:#1d2430}table{border-collapse:collapse;margin-top:12px}
td,th{border:1px solid #c8ced8;padding:4px 8px;font-size:13px;vertical-align:top;text-align:left}th{background:#eef1f5}
.problems li{color:#d0342c}.problems li.ok{color:#2e9d4c}</style></head><body>
<h1>Istio mesh %(mesh)s</h1>
<p>Model %(model)s, %(n)d clusters on %(nets)d network(s), %(secrets)d remote secrets. Generated %(when)s.
The same data: <a href="mesh-report.json">mesh-report.json</a>.</p>
<div id="topology">%(svg)s</div>
<h2>Problems</h2><ul class="problems">%(problems)s</ul>
<h2>Clusters</h2>
<table><tr><th>cluster</th><th>network</th><th>role</th><th>API server</th><th>east-west gateway</th><th>istiod sync</th>
<th>remote secrets held (sync; token)</th><th>proxies (version; istiod; xDS)</th></tr>
%(rows)s</table>
<script type="application/json" id="report-data">%(json)s</script>
</body></html>
""" % dict(mesh=e(str(report["mesh_id"])), model=e(str(report["model"])), n=len(report["clusters"]), nets=len(report["networks"]),
           secrets=len(report["secrets"]), when=e(report["generated"]), svg=svg_body, problems=problems, rows="\n".join(rows),
           json=json.dumps(report, sort_keys=True).replace("</", "<\\/"))
