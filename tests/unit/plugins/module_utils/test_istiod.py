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
