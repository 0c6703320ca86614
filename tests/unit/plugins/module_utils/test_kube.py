# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The comparison rules behind 'no write when nothing differs' and the redaction of Secret values."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils import kube


def test_contains_is_a_subset_check_except_exact_fields():
    current = {"metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}, "spec": {"x": 1, "y": [1, 2]}, "data": {"k": "v", "extra": "e"}}
    assert kube.contains(current, {"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}})
    assert not kube.contains(current, {"metadata": {"labels": {"a": "2"}}})
    assert not kube.contains(current, {"spec": {"y": [1]}}), "lists compare whole"
    assert not kube.contains(current, {"data": {"k": "v"}}), "data compares whole: an extra key is a difference"
    assert kube.contains(current, {"data": {"k": "v", "extra": "e"}})
    assert not kube.contains(current, {"missing": {}})


def test_managed_view_keeps_only_managed_keys():
    current = {"metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}, "data": {"k": "v", "extra": "e"}}
    view = kube.managed_view(current, {"metadata": {"labels": {"a": "9"}}, "data": {"k": "v"}})
    assert view == {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v", "extra": "e"}}
    assert kube.managed_view(None, {"a": 1}) is None


def test_redact_hides_secret_values_only():
    secret = {"kind": "Secret", "data": {"token": "c2VjcmV0"}, "metadata": {"name": "s"}}
    red = kube.redact(secret)
    assert red["data"]["token"].startswith("<redacted sha256:")
    assert "c2VjcmV0" not in str(red)
    assert secret["data"]["token"] == "c2VjcmV0", "the input is not modified"
    cm = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert kube.redact(cm) is cm
    assert kube.fingerprint(None) is None


def test_merged_and_diff():
    merged = kube._merged({"metadata": {"labels": {"a": "1"}}, "data": {"x": "1"}}, {"metadata": {"labels": {"b": "2"}}, "data": {"y": "2"}})
    assert merged == {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"y": "2"}}
    diff = kube.diff_of([{"changed": True, "key": "k", "before": 1, "after": 2}, {"changed": False, "key": "n", "before": 0, "after": 0}])
    assert diff == {"before": {"k": 1}, "after": {"k": 2}}


def test_contains_item_subset_allows_server_defaults_inside_lists():
    # A Gateway listener as the API server returns it (allowedRoutes defaulted), and a CRD-like nested list.
    current = {"spec": {"listeners": [{"name": "mesh", "port": 15008, "allowedRoutes": {"namespaces": {"from": "Same"}}}],
                        "required": ["a", "b"]}, "metadata": {"labels": {"x": "1"}}}
    desired = {"spec": {"listeners": [{"name": "mesh", "port": 15008}], "required": ["a", "b"]}}
    assert not kube.contains(current, desired), "lists compare whole by default"
    assert kube.contains(current, desired, item_subset=True)
    assert not kube.contains(current, {"spec": {"listeners": [{"name": "mesh", "port": 15009}]}}, item_subset=True)
    assert not kube.contains(current, {"spec": {"listeners": []}}, item_subset=True), "an item more or less is a difference"
    assert not kube.contains(current, {"spec": {"required": ["a"]}}, item_subset=True)
    assert not kube.contains(current, {"spec": {"required": ["b", "a"]}}, item_subset=True), "order matters"
    # A manifest's explicit null (e.g. conditions: null) matches a field the server leaves out.
    assert kube.contains(current, {"spec": {"missing": None}}, item_subset=True)
    assert not kube.contains(current, {"spec": {"missing": None}})
    assert not kube.contains(current, {"spec": {"missing": {}}}, item_subset=True)


def test_contains_item_subset_keeps_exact_fields_exact():
    current = {"data": {"k": "v", "extra": "e"}}
    assert not kube.contains(current, {"data": {"k": "v"}}, item_subset=True)


class _Config(object):
    host = "https://127.0.0.1:6443"


class _Client(object):
    configuration = _Config()


def _unreachable_kube(error):
    k = kube.Kube.__new__(kube.Kube)  # no client: the transport is the stub below
    k.label, k.k8s = "cluster3", _Client()

    def resource(api_version, kind):
        raise error
    k.resource = resource
    return k


def test_a_lost_api_server_is_reported_with_the_cluster_and_server():
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    k = _unreachable_kube(MaxRetryError(None, "/api/v1/namespaces/istio-system/secrets/x", refused))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "istio-system"}}
    for call in (lambda: k.get("v1", "Secret", "x", "istio-system"), lambda: k.list("v1", "Secret"),
                 lambda: k.ensure(secret), lambda: k.delete("v1", "Secret", "x", "istio-system")):
        try:
            call()
        except kube.KubeError as e:
            assert str(e) == "cluster3: API server https://127.0.0.1:6443 unreachable ([Errno 111] Connection refused)"
        else:
            raise AssertionError("no KubeError")


def test_other_errors_pass_through_unchanged():
    k = _unreachable_kube(ValueError("not a transport problem"))
    try:
        k.get("v1", "Secret", "x", "istio-system")
    except ValueError as e:
        assert str(e) == "not a transport problem"
    else:
        raise AssertionError("no ValueError")
    assert kube._reason(ConnectionResetError(104, "Connection reset by peer")) == "[Errno 104] Connection reset by peer"
    assert kube._reason(TimeoutError()) == "TimeoutError"


def test_object_ref_and_written():
    ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "istio-system"}}
    refs = [kube.object_ref(ns_obj, "patch"), kube.object_ref(secret, "none"), kube.object_ref(secret, "create", "c2")]
    assert refs[0] == {"kind": "Namespace", "namespace": "", "name": "istio-system", "action": "patch"}
    assert kube.written(refs) == [refs[0], {"kind": "Secret", "namespace": "istio-system", "name": "s",
                                            "action": "create", "cluster": "c2"}]


def test_merged_follows_merge_patch_null_removes_and_create_sends_no_nulls():
    current = {"metadata": {"labels": {"istio.io/rev": "canary", "keep": "1"}}, "spec": {"a": 1}}
    desired = {"metadata": {"labels": {"istio.io/rev": None, "new": "2"}}}
    assert kube._merged(current, desired) == {"metadata": {"labels": {"keep": "1", "new": "2"}}, "spec": {"a": 1}}
    assert kube._without_none(desired) == {"metadata": {"labels": {"new": "2"}}}
    assert current["metadata"]["labels"]["istio.io/rev"] == "canary", "inputs are not modified"
