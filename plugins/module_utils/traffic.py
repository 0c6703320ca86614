# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio's "Verify the installation" check, the logic part: count which helloworld versions answered a round of
curl requests, read the client sidecar's view of the service's endpoints (Envoy's /clusters), and name the likely
cause when a version never answers. No cluster access here (the traffic_check module execs the commands)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

HELLO = re.compile(r"Hello version: (v\d+), instance: (\S+)")
# Envoy's 503 body names the transport failure; curl's own errors name connection problems.
TLS_FAILURE = re.compile(r"TLS_error|CERTIFICATE_VERIFY_FAILED|certificate verify failed|TLSV1_ALERT", re.I)
CONNECT_FAILURE = re.compile(r"connection failure|connection timeout|delayed connect error|Connection refused|"
                             r"timed out|no healthy upstream", re.I)
SIDECAR_PORT = 15443


def curl_script(url, requests, timeout=5):
    """One round: `requests` requests from inside the client pod, each answer on its own line."""
    return "for i in $(seq 1 %d); do curl -sS --max-time %d %s; echo; done" % (requests, timeout, url)


def answers(output):
    """{version: count} of the helloworld answers in a round's output."""
    counts = {}
    for match in HELLO.finditer(output or ""):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def errors(output):
    """The lines of a round that are not helloworld answers (Envoy 503 bodies, curl errors), first of each kind."""
    seen = []
    for line in (output or "").splitlines():
        line = line.strip()
        if line and not HELLO.search(line) and line not in seen:
            seen.append(line)
    return seen


def service_cluster(service, namespace, port):
    return "outbound|%d||%s.%s.svc.cluster.local" % (port, service, namespace)


def endpoints(clusters_text, cluster_name):
    """{address:port: {stat: value}} of one Envoy cluster, from the admin /clusters text format
    (`<cluster>::<address:port>::<stat>::<value>` per line)."""
    found = {}
    for line in (clusters_text or "").splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == cluster_name and re.match(r"^[\d.:\[\]a-fA-F]+:\d+$", parts[1]):
            found.setdefault(parts[1], {})[parts[2]] = parts[3]
    return found


def _host(endpoint):
    return endpoint.rsplit(":", 1)[0].strip("[]")


# curl's exit codes for a TCP connection that could not be made: 7 refused/unreachable, 28 timed out.
TCP_UNREACHABLE = (7, 28)


def tcp_probe_script(endpoint):
    """From the sidecar's own container (uid 1337, not captured): does a TCP connection to endpoint open? curl's
    exit code tells (the TLS handshake that follows may fail; that is not what is asked)."""
    return "curl -sk --max-time 3 -o /dev/null https://%s; echo \"exit=$?\"" % endpoint


def tcp_reachable(output):
    """True/False from tcp_probe_script's output, None when it did not run (no curl in the proxy image)."""
    match = re.search(r"exit=(\d+)", output or "")
    return None if match is None else int(match.group(1)) not in TCP_UNREACHABLE


def failing_remote(eps, local_ips):
    """Endpoints outside this cluster with connection failures (Envoy counts a failed TLS handshake as one)."""
    return sorted(e for e in eps if _host(e) not in set(local_ips) and int(eps[e].get("cx_connect_fail", "0") or 0))


def diagnose(cluster, missing, output, eps, local_ips, gateways, reachable=None):
    """Likely causes, in words, of versions `missing` from `cluster`'s answers.
    eps: the client sidecar's endpoints of the service ({} when unknown: no sidecar, ambient);
    local_ips: helloworld pod IPs in this cluster; gateways: other networks' gateways [{network, address, port}];
    reachable: {endpoint: whether a TCP connection to it opens (None: unknown)} for the failing remote endpoints."""
    causes = []
    reachable = reachable or {}
    seen_errors = errors(output)
    tls = [e for e in seen_errors if TLS_FAILURE.search(e)]
    connect = [e for e in seen_errors if CONNECT_FAILURE.search(e)]
    trust = ("a trust problem - the clusters' workload certificates do not chain to one root; compare the cacerts Secret "
             "(root-cert.pem) of every cluster")
    if tls:
        causes.append("TLS handshake failures (%s): %s" % (tls[0][:200], trust))
    by_address = dict((g["address"], g) for g in gateways or [])
    if eps:
        local = set(local_ips)
        if all(_host(e) in local for e in eps):
            causes.append("the proxies of %s know no helloworld endpoint outside %s (%d local): the istiod serving %s sees no "
                          "other cluster's helloworld - a remote secret missing or not synced, or the pods of %s not Ready "
                          "elsewhere" % (cluster, cluster, len(eps), cluster, ", ".join(missing)))
        for e in failing_remote(eps, local_ips):
            gateway = by_address.get(_host(e))
            what = "the east-west gateway of %s (%s)" % (gateway["network"], e) if gateway else "endpoint %s" % e
            failures = int(eps[e]["cx_connect_fail"])
            if reachable.get(e) is False:
                causes.append("%s is unreachable from %s: no TCP connection opens (%d connection failures)" % (what, cluster, failures))
            elif reachable.get(e) and not tls:
                causes.append("%s accepts TCP connections from %s, yet %d connections through it failed: TLS handshakes with "
                              "the workloads behind it fail, %s" % (what, cluster, failures, trust))
            elif not tls:
                causes.append("%d connections from %s to %s failed" % (failures, cluster, what))
    elif gateways and not tls and connect:
        causes.append("connections fail (%s); the other networks' east-west gateways are %s"
                      % (connect[0][:200], ", ".join("%s %s:%s" % (g["network"], g["address"], g.get("port") or SIDECAR_PORT)
                                                     for g in gateways)))
    if not causes:
        last = ("; last errors: " + " | ".join(seen_errors[-3:])[:400]) if seen_errors else \
            "; every request was answered, by the versions listed"
        causes.append("no cause visible from %s%s" % (cluster, last))
    return causes


def summary(cluster, counts, expected, requests):
    """cluster1: 20 requests answered by v1 x12, v2 x8"""
    got = ", ".join("%s x%d" % (v, counts[v]) for v in sorted(counts)) or "no version"
    missing = [v for v in expected if not counts.get(v)]
    line = "%s: %d requests answered by %s" % (cluster, requests, got)
    return line + ("; never by %s" % ", ".join(missing) if missing else "")
