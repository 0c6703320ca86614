# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading helloworld answers and Envoy's endpoints, and naming why a version never answered."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils import traffic

CLUSTER = "outbound|5000||helloworld.sample.svc.cluster.local"
TLS_503 = ("upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection "
           "failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED")
GATEWAYS = [{"network": "network2", "address": "198.51.100.7", "port": None}]


def clusters_text(rows):
    return "\n".join("%s::%s::%s::%s" % (CLUSTER, ep, stat, value) for ep, stat, value in rows) + \
        "\noutbound|80||curl.sample.svc.cluster.local::10.0.0.9:80::cx_connect_fail::7\n"


def test_answers_and_errors():
    out = "Hello version: v1, instance: helloworld-v1-abc\nHello version: v2, instance: helloworld-v2-x\n" \
          "Hello version: v1, instance: helloworld-v1-abc\ncurl: (28) Connection timed out after 5001 milliseconds\n\n"
    assert traffic.answers(out) == {"v1": 2, "v2": 1}
    assert traffic.errors(out) == ["curl: (28) Connection timed out after 5001 milliseconds"]
    assert traffic.answers("") == {}


def test_summary():
    assert traffic.summary("c1", {"v1": 12, "v2": 8}, ["v1", "v2"], 20) == "c1: 20 requests answered by v1 x12, v2 x8"
    assert traffic.summary("c1", {"v1": 20}, ["v1", "v2"], 20) == "c1: 20 requests answered by v1 x20; never by v2"
    assert traffic.summary("c1", {}, ["v1", "v2"], 20) == "c1: 20 requests answered by no version; never by v1, v2"


def test_endpoints_of_one_cluster_only():
    text = clusters_text([("10.0.0.5:5000", "cx_connect_fail", "0"), ("10.0.0.5:5000", "health_flags", "healthy"),
                          ("198.51.100.7:15443", "cx_connect_fail", "3")])
    assert traffic.endpoints(text, CLUSTER) == {"10.0.0.5:5000": {"cx_connect_fail": "0", "health_flags": "healthy"},
                                                "198.51.100.7:15443": {"cx_connect_fail": "3"}}
    assert traffic.service_cluster("helloworld", "sample", 5000) == CLUSTER


def test_no_endpoint_outside_this_cluster():
    eps = {"10.0.0.5:5000": {"cx_connect_fail": "0"}}
    causes = traffic.diagnose("cluster1", ["v2"], "Hello version: v1, instance: a\n", eps, ["10.0.0.5"], GATEWAYS)
    assert len(causes) == 1 and "know no helloworld endpoint outside cluster1 (1 local)" in causes[0]
    assert "remote secret missing or not synced" in causes[0]


def test_gateway_unreachable():
    eps = {"10.0.0.5:5000": {}, "198.51.100.7:15443": {"cx_connect_fail": "4", "health_flags": "healthy"}}
    out = "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n"
    causes = traffic.diagnose("cluster1", ["v2"], out, eps, ["10.0.0.5"], GATEWAYS, {"198.51.100.7:15443": False})
    assert causes == ["the east-west gateway of network2 (198.51.100.7:15443) is unreachable from cluster1: no TCP connection "
                      "opens (4 connection failures)"]
    # Without the probe's answer: only what failed.
    assert traffic.diagnose("cluster1", ["v2"], out, eps, ["10.0.0.5"], GATEWAYS) == [
        "4 connections from cluster1 to the east-west gateway of network2 (198.51.100.7:15443) failed"]


def test_gateway_reachable_but_connections_fail_is_a_trust_problem():
    # Envoy retries a failed connection on another endpoint: the client sees only local answers, no error.
    eps = {"10.0.0.5:5000": {"cx_connect_fail": "0"}, "198.51.100.7:15443": {"cx_connect_fail": "82"}}
    causes = traffic.diagnose("cluster1", ["v2"], "Hello version: v1, instance: a\n", eps, ["10.0.0.5"], GATEWAYS,
                              {"198.51.100.7:15443": True})
    assert len(causes) == 1 and causes[0].startswith("the east-west gateway of network2 (198.51.100.7:15443) accepts TCP "
                                                     "connections from cluster1, yet 82 connections through it failed")
    assert "a trust problem" in causes[0]
    # On one network the endpoint is a pod.
    causes = traffic.diagnose("cluster1", ["v2"], "", {"10.0.1.9:5000": {"cx_connect_fail": "3"}}, [], [], {"10.0.1.9:5000": True})
    assert causes[0].startswith("endpoint 10.0.1.9:5000 accepts TCP connections")


def test_tcp_probe():
    assert traffic.tcp_probe_script("198.51.100.7:15443") == \
        'curl -sk --max-time 3 -o /dev/null https://198.51.100.7:15443; echo "exit=$?"'
    assert traffic.tcp_reachable("exit=35\n") is True     # connected, TLS refused: reachable
    assert traffic.tcp_reachable("exit=7\n") is False     # refused
    assert traffic.tcp_reachable("exit=28") is False       # timed out
    assert traffic.tcp_reachable("sh: curl: not found") is None
    assert traffic.failing_remote({"a:1": {"cx_connect_fail": "2"}, "b:1": {"cx_connect_fail": "0"}, "c:1": {"cx_connect_fail": "5"}},
                                  ["c"]) == ["a:1"]


def test_tls_failure_is_a_trust_problem():
    eps = {"10.0.0.5:5000": {}, "10.0.1.5:5000": {"cx_connect_fail": "0"}}
    causes = traffic.diagnose("cluster1", ["v2"], TLS_503 + "\n", eps, ["10.0.0.5"], [])
    assert len(causes) == 1 and causes[0].startswith("TLS handshake failures (upstream connect error")
    assert "a trust problem" in causes[0] and "cacerts" in causes[0]


def test_without_sidecar_view_connection_errors_name_the_gateways():
    causes = traffic.diagnose("cluster1", ["v2"], "no healthy upstream\n", {}, [], GATEWAYS)
    assert causes == ["connections fail (no healthy upstream); the other networks' east-west gateways are network2 "
                      "198.51.100.7:15443"]


def test_no_visible_cause_quotes_the_last_errors():
    causes = traffic.diagnose("cluster1", ["v2"], "weird\n", {}, [], [])
    assert causes == ["no cause visible from cluster1; last errors: weird"]
    assert traffic.diagnose("cluster1", ["v2"], "", {}, [], []) == [
        "no cause visible from cluster1; every request was answered, by the versions listed"]


def test_curl_script():
    assert traffic.curl_script("http://helloworld.sample:5000/hello", 3) == \
        "for i in $(seq 1 3); do curl -sS --max-time 5 http://helloworld.sample:5000/hello; echo; done"
