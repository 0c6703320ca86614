# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""changed_objects: the per-cluster report of what a run wrote, built from the modules' and helm's results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.meshops.istio.plugins.filter.changed_objects import changed_objects, describe


def test_objects_by_cluster_remote_secrets_under_their_holder():
    sources = [
        {"host": "c1", "result": {"changed": True, "objects": [
            {"kind": "Namespace", "namespace": "", "name": "istio-system", "action": "patch"}]}},
        {"host": "c1", "result": {"changed": True, "objects": [
            {"kind": "Secret", "namespace": "istio-system", "name": "reader-token", "action": "create"},
            {"cluster": "c2", "kind": "Secret", "namespace": "istio-system", "name": "istio-remote-secret-c1",
             "action": "create"}]}},
        {"host": "c2", "result": {"changed": False, "objects": [
            {"kind": "Gateway", "namespace": "istio-system", "name": "cross-network-gateway", "action": "none"}]}},
    ]
    assert changed_objects(sources, ["c1", "c2", "c3"]) == {
        "c1": ["create Secret istio-system/reader-token", "patch Namespace istio-system"],
        "c2": ["create Secret istio-system/istio-remote-secret-c1"],
        "c3": []}


def test_helm_releases_install_or_upgrade_in_check_mode_and_for_real():
    def helm(host, result):
        return {"host": host, "result": result, "release": "istiod", "namespace": "istio-system"}
    check_install = {"changed": True, "status": {"values": {"current": {}, "declared": {}}}}
    check_upgrade = {"changed": True, "status": {"values": {"current": {"a": 1}, "declared": {}}}}
    real_install = {"changed": True, "status": {"revision": "1", "values": {}}}
    real_upgrade = {"changed": True, "status": {"revision": 4, "values": {}}}
    unchanged = {"changed": False, "status": {"revision": 4}}
    assert changed_objects([helm("a", check_install), helm("b", check_upgrade), helm("c", real_install),
                            helm("d", real_upgrade), helm("e", unchanged)]) == {
        "a": ["install HelmRelease istio-system/istiod"], "b": ["upgrade HelmRelease istio-system/istiod"],
        "c": ["install HelmRelease istio-system/istiod"], "d": ["upgrade HelmRelease istio-system/istiod"]}


def test_skipped_failed_and_missing_results_count_as_nothing():
    obj = {"kind": "Secret", "namespace": "ns", "name": "x", "action": "create"}
    assert changed_objects([{"host": "a", "result": {"skipped": True, "objects": [obj]}},
                            {"host": "a", "result": {"failed": True, "objects": [obj]}},
                            {"host": "a", "result": {}}, {"host": "a", "result": None}], ["a"]) == {"a": []}


def test_bad_source_is_named():
    with pytest.raises(AnsibleFilterError, match="needs a host"):
        changed_objects([{"result": {}}])


def test_describe():
    assert describe({"kind": "Secret", "namespace": "istio-system", "name": "cacerts", "action": "patch"}) == \
        "patch Secret istio-system/cacerts"
    assert describe({"kind": "Namespace", "namespace": "", "name": "istio-system", "action": "create"}) == \
        "create Namespace istio-system"


def test_kept_objects_are_not_writes():
    """gateway_api_crds reports CRDs it leaves alone (newer than the release's) as keep."""
    crds = {"changed": True, "objects": [
        {"kind": "CustomResourceDefinition", "name": "gateways.gateway.networking.k8s.io", "action": "keep",
         "reason": "v1.5.0 installed is newer"},
        {"kind": "CustomResourceDefinition", "name": "grpcroutes.gateway.networking.k8s.io", "action": "create"}]}
    assert changed_objects([{"host": "a", "result": crds}], ["a"]) == {
        "a": ["create CustomResourceDefinition grpcroutes.gateway.networking.k8s.io"]}


def test_results_collected_twice_are_reported_once():
    """A model role that imports a verb role twice keeps the first import's results before the second one
    overwrites them with skipped results; the results of other roles are then collected twice."""
    helm = {"changed": True, "status": {"revision": "1"}}
    secret = {"changed": True, "objects": [{"cluster": "p", "kind": "Secret", "namespace": "ns", "name": "rs-r", "action": "create"}]}
    sources = [
        # collected between the imports: the primary's release installed, the remote's skipped
        {"host": "p", "result": helm, "release": "istiod", "namespace": "ns"},
        {"host": "r", "result": {"skipped": True}, "release": "istiod", "namespace": "ns"},
        {"host": "r", "result": secret},
        # collected at the end: the other way round
        {"host": "p", "result": {"skipped": True}, "release": "istiod", "namespace": "ns"},
        {"host": "r", "result": helm, "release": "istiod", "namespace": "ns"},
        {"host": "r", "result": secret},
    ]
    assert changed_objects(sources, ["p", "r"]) == {
        "p": ["create Secret ns/rs-r", "install HelmRelease ns/istiod"], "r": ["install HelmRelease ns/istiod"]}
