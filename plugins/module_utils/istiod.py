# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read istiod's debug endpoints (/debug/clusterz, /debug/networkz) through the Kubernetes API, the way
`istioctl remote-clusters` does: a port-forward to each Running istiod pod's monitoring port."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

try:
    from kubernetes.stream import portforward
except ImportError:
    portforward = None  # reported by AnsibleK8SModule's requires("kubernetes")

MONITORING_PORT = 15014


def istiod_pods(core, namespace, revision=None):
    """Running istiod pods (label app=istiod), optionally of one revision, sorted by name."""
    selector = "app=istiod"
    if revision:
        selector += ",istio.io/rev=%s" % revision
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return sorted((p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp),
                  key=lambda p: p.metadata.name)


def monitoring_port(pod):
    annotations = pod.metadata.annotations or {}
    try:
        return int(annotations.get("prometheus.io/port", MONITORING_PORT))
    except ValueError:
        return MONITORING_PORT


def http_get(core, pod, path, timeout=10):
    """GET path on the pod's monitoring port through a port-forward; returns the decoded JSON body."""
    port = monitoring_port(pod)
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod.metadata.name, pod.metadata.namespace,
                     ports=str(port))
    try:
        sock = pf.socket(port)
        sock.settimeout(timeout)
        sock.sendall(("GET %s HTTP/1.0\r\nHost: istiod\r\nAccept: application/json\r\n\r\n" % path).encode("ascii"))
        status, body = read_response(sock)
        sock.close()
    finally:
        pf.close()
    if status != 200:
        raise IOError("istiod %s answered HTTP %s for %s" % (pod.metadata.name, status, path))
    return json.loads(body.decode("utf-8") or "null")


def _complete_json(body):
    try:
        json.loads(body.decode("utf-8"))
        return True
    except ValueError:
        return False


def read_response(sock, complete=_complete_json):
    """(status, body) of an HTTP/1.0 response. The body is read up to its Content-Length: a port-forward stream
    does not always report the end of the connection. A body too large for Go's server to give its length
    (/debug/syncz of a busy istiod) is read until complete(body) says it is whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, dummy, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise IOError("not an HTTP response: %r" % lines[0][:80])
    length = None
    for line in lines[1:]:
        name, dummy, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while (len(body) < length) if length is not None else not (body and complete(body)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body if length is None else body[:length]


def evaluate(clusterz, networkz, expect_synced, expect_gateways, expect_absent=()):
    """Compare one istiod's view with the expectation; returns a list of problems (empty when all is well).
    expect_absent: cluster IDs that must not be listed at all (any status)."""
    problems = []
    status = dict((row.get("id"), row) for row in clusterz or [])
    for cid in expect_absent:
        if cid in status:
            problems.append("cluster %s is still listed (%s, secret %s): its remote secret is still in the system namespace"
                            % (cid, status[cid].get("syncStatus"), status[cid].get("secretName")))
    for cid in expect_synced:
        row = status.get(cid)
        if row is None:
            problems.append("cluster %s is not known (no remote secret with key %s in the system namespace?)" % (cid, cid))
        elif row.get("syncStatus") != "synced":
            problems.append("cluster %s is %s (secret %s): istiod cannot reach or authenticate to its API server"
                            % (cid, row.get("syncStatus"), row.get("secretName")))
    seen = set((g.get("Network"), g.get("Addr")) for g in networkz or [])
    # A sidecar-mode gateway is listed with its mTLS port (Port, 15443), an ambient one with HBONEPort (15008).
    ports = set((g.get("Network"), g.get("Addr"), p) for g in networkz or [] for p in (g.get("Port"), g.get("HBONEPort")) if p)
    for gw in expect_gateways:
        if (gw["network"], gw["address"]) not in seen:
            problems.append("no gateway %s for network %s in /debug/networkz" % (gw["address"], gw["network"]))
        elif gw.get("port") and (gw["network"], gw["address"], gw["port"]) not in ports:
            problems.append("gateway %s for network %s is not listed with port %s in /debug/networkz" % (gw["address"], gw["network"], gw["port"]))
    return problems


# The xDS types istioctl proxy-status shows, as /debug/syncz names their nonces.
SYNC_TYPES = (("CDS", "cluster"), ("LDS", "listener"), ("EDS", "endpoint"), ("RDS", "route"))


def proxies(syncz):
    """The proxies an istiod serves, from /debug/syncz, sorted: proxy (name.namespace), cluster_id, type, version and
    a status per xDS type as istioctl proxy-status gives it (SYNCED: the last config sent was acknowledged; STALE: not
    yet; NOT SENT: nothing of that type sent)."""
    out = []
    for row in syncz or []:
        status = {}
        for name, key in SYNC_TYPES:
            sent, acked = row.get(key + "_sent"), row.get(key + "_acked")
            status[name] = "NOT SENT" if not sent else "SYNCED" if sent == acked else "STALE"
        out.append(dict(proxy=row.get("proxy", ""), cluster_id=row.get("cluster_id", ""), type=row.get("proxy_type", ""),
                        version=row.get("istio_version", ""), status=status))
    return sorted(out, key=lambda p: (p["cluster_id"], p["proxy"]))
