# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Comparing what an istiod reports with what the mesh expects."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils import istiod

CLUSTERZ = [{"id": "c1", "secretName": "", "syncStatus": "synced"}, {"id": "c2", "secretName": "istio-remote-secret-c2", "syncStatus": "synced"}]
# /debug/networkz: a sidecar-mode gateway (mTLS Port) and an ambient one (HBONEPort only).
NETWORKZ = [{"Network": "n1", "Addr": "203.0.113.1", "Port": 15443, "HBONEPort": 0},
            {"Network": "n2", "Addr": "203.0.113.2", "Port": 0, "HBONEPort": 15008}]


def test_expectations_met():
    gws = [{"network": "n1", "address": "203.0.113.1"}, {"network": "n1", "address": "203.0.113.1", "port": 15443},
           {"network": "n2", "address": "203.0.113.2", "port": 15008}, {"network": "n2", "address": "203.0.113.2", "port": None}]
    assert istiod.evaluate(CLUSTERZ, NETWORKZ, ["c2"], gws) == []


def test_expectations_missed():
    expected = [{"network": "n2", "address": "203.0.113.2", "port": 15443}, {"network": "n3", "address": "203.0.113.3"}]
    problems = istiod.evaluate(CLUSTERZ, NETWORKZ, ["c3"], expected)
    assert problems == ["cluster c3 is not known (no remote secret with key c3 in the system namespace?)",
                        "gateway 203.0.113.2 for network n2 is not listed with port 15443 in /debug/networkz",
                        "no gateway 203.0.113.3 for network n3 in /debug/networkz"]


def test_expect_absent():
    assert istiod.evaluate(CLUSTERZ, NETWORKZ, [], [], ["c3"]) == []
    assert istiod.evaluate(CLUSTERZ, NETWORKZ, [], [], ["c2"]) == [
        "cluster c2 is still listed (synced, secret istio-remote-secret-c2): its remote secret is still in the system namespace"]


def test_proxies_from_syncz_as_proxy_status_shows_them():
    syncz = [{"cluster_id": "c2", "proxy": "b.sample", "proxy_type": "sidecar", "istio_version": "1.30.3",
              "cluster_sent": "n1", "cluster_acked": "n1", "listener_sent": "n2", "listener_acked": "n1",
              "endpoint_sent": "n3", "endpoint_acked": "n3"},
             {"cluster_id": "c1", "proxy": "a.sample", "proxy_type": "router", "istio_version": "1.29.6"}]
    assert istiod.proxies(syncz) == [
        {"proxy": "a.sample", "cluster_id": "c1", "type": "router", "version": "1.29.6",
         "status": {"CDS": "NOT SENT", "LDS": "NOT SENT", "EDS": "NOT SENT", "RDS": "NOT SENT"}},
        {"proxy": "b.sample", "cluster_id": "c2", "type": "sidecar", "version": "1.30.3",
         "status": {"CDS": "SYNCED", "LDS": "STALE", "EDS": "SYNCED", "RDS": "NOT SENT"}}]
    assert istiod.proxies(None) == []


class _Stream(object):
    """A port-forward socket: gives its chunks, then blocks (here: fails) instead of reporting the end."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv(self, size):
        if not self.chunks:
            raise AssertionError("read past the end of the response")
        return self.chunks.pop(0)


def test_read_response_without_content_length_stops_at_a_whole_json_body():
    body = b'[{"proxy": "a.sample", "cluster_id": "c1"}, {"proxy": "b.sample"}]'
    stream = _Stream([b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body[:20], body[20:50], body[50:]])
    assert istiod.read_response(stream) == (200, body)
    with_length = _Stream([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]"])
    assert istiod.read_response(with_length) == (200, b"[]")
