# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote Secret and its kubeconfig, built as istioctl builds them; token bookkeeping."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import time

import yaml

from ansible_collections.meshops.istio.plugins.module_utils import remote_secret as rs


def jwt(claims):
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return "%s.%s.sig" % (part({"alg": "RS256"}), part(claims))


def test_secret_shape_matches_istioctl():
    kc = rs.build_kubeconfig("cluster2", "https://203.0.113.2:6443", "Q0E=", "tok")
    secret = rs.build_secret("cluster2", kc, "istio-system")
    assert secret["metadata"]["name"] == "istio-remote-secret-cluster2"
    assert secret["metadata"]["namespace"] == "istio-system"
    assert secret["metadata"]["labels"] == {"istio/multiCluster": "true"}
    assert secret["metadata"]["annotations"] == {"networking.istio.io/cluster": "cluster2"}
    assert secret["type"] == "Opaque"
    assert list(secret["data"]) == ["cluster2"]
    text = base64.b64decode(secret["data"]["cluster2"]).decode()
    # client-go's layout: keys sorted, block style, names all equal to the cluster ID
    assert text == (
        "apiVersion: v1\n"
        "clusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://203.0.113.2:6443\n  name: cluster2\n"
        "contexts:\n- context:\n    cluster: cluster2\n    user: cluster2\n  name: cluster2\n"
        "current-context: cluster2\nkind: Config\npreferences: {}\n"
        "users:\n- name: cluster2\n  user:\n    token: tok\n")


def test_tls_server_name_and_labels():
    kc = rs.build_kubeconfig("c", "https://h", "Q0E=", "t", tls_server_name="api.internal")
    assert kc["clusters"][0]["cluster"]["tls-server-name"] == "api.internal"
    secret = rs.build_secret("c", kc, "ns", labels={"app.kubernetes.io/managed-by": "meshops.istio"})
    assert secret["metadata"]["labels"]["istio/multiCluster"] == "true"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshops.istio"


def test_parse_round_trip_and_garbage():
    kc = rs.build_kubeconfig("c", "https://h", "Q0E=", "t")
    secret = rs.build_secret("c", kc, "ns")
    assert rs.parse_secret_kubeconfig(secret, "c") == kc
    assert rs.parse_secret_kubeconfig(secret, "other") is None
    assert rs.parse_secret_kubeconfig(None, "c") is None
    assert rs.parse_secret_kubeconfig({"data": {"c": "!!notbase64"}}, "c") is None
    assert rs.kubeconfig_token(kc) == "t"
    assert rs.kubeconfig_token({"users": []}) is None


def test_same_except_token():
    a = rs.build_kubeconfig("c", "https://h", "Q0E=", "t1")
    assert rs.same_except_token(a, rs.build_kubeconfig("c", "https://h", "Q0E=", "t2"))
    assert not rs.same_except_token(a, rs.build_kubeconfig("c", "https://other", "Q0E=", "t1"))
    assert not rs.same_except_token(a, rs.build_kubeconfig("c", "https://h", "Q0I=", "t1"))
    assert not rs.same_except_token(None, a)
    # the inputs are not modified
    assert rs.kubeconfig_token(a) == "t1"


def test_token_still_good():
    now = 1000000
    sub = "system:serviceaccount:istio-system:istio-reader-service-account"
    good = jwt({"sub": sub, "exp": now + 5000})
    assert rs.token_still_good(good, "istio-system", "istio-reader-service-account", 4000, now=now)
    assert not rs.token_still_good(good, "istio-system", "istio-reader-service-account", 6000, now=now)
    assert not rs.token_still_good(good, "other-ns", "istio-reader-service-account", 10, now=now)
    assert not rs.token_still_good(jwt({"sub": sub}), "istio-system", "istio-reader-service-account", 10, now=now)
    assert not rs.token_still_good("not-a-jwt", "istio-system", "istio-reader-service-account", 10, now=now)
    assert not rs.token_still_good(None, "istio-system", "istio-reader-service-account", 10, now=now)
    assert rs.token_expiry(good) == now + 5000
    assert rs.token_expiry("x") is None
    assert rs.token_still_good(jwt({"sub": sub, "exp": time.time() + 100}), "istio-system", "istio-reader-service-account", 10)


def test_names():
    assert rs.secret_name("cluster1") == "istio-remote-secret-cluster1"
    assert rs.token_secret_name("istio-reader-service-account") == "istio-reader-service-account-istio-remote-secret-token"
    assert yaml.safe_load(rs.dump_kubeconfig({"b": 1, "a": 2})) == {"a": 2, "b": 1}


def test_describe_kubeconfig_tells_expiring_from_legacy_tokens_and_never_returns_the_token():
    bound = jwt({"sub": "system:serviceaccount:istio-system:r", "exp": 1900000000})
    legacy = jwt({"sub": "system:serviceaccount:istio-system:r", "kubernetes.io/serviceaccount/namespace": "istio-system"})
    d = rs.describe_kubeconfig(rs.build_kubeconfig("c2", "https://203.0.113.2:6443", "Q0E=", bound))
    assert d == {"server": "https://203.0.113.2:6443", "auth": "token", "token_type": "token_request", "expires": 1900000000}
    assert bound not in json.dumps(d)
    d = rs.describe_kubeconfig(rs.build_kubeconfig("c2", "https://203.0.113.2:6443", "Q0E=", legacy))
    assert (d["token_type"], d["expires"]) == ("legacy", None)
    kc = rs.build_kubeconfig("c2", "https://h:6443", "Q0E=", "x")
    kc["users"][0]["user"] = {"client-certificate-data": "Q0U="}
    assert rs.describe_kubeconfig(kc)["auth"] == "other"
    assert rs.describe_kubeconfig(None) == {"server": "", "auth": "unreadable", "token_type": "none", "expires": None}


def test_rotation_names():
    sa = "istio-reader-service-account"
    assert rs.token_secret_name(sa, "1700000000000") == sa + "-istio-remote-secret-token-1700000000000"
    assert rs.is_token_secret_name(sa + "-istio-remote-secret-token", sa)
    assert rs.is_token_secret_name(rs.token_secret_name(sa, rs.generation()), sa)
    assert not rs.is_token_secret_name(sa + "-istio-remote-secret-token-mine", sa)
    assert not rs.is_token_secret_name("other-istio-remote-secret-token", sa)
    anchor = rs.anchor_secret_name(sa, "17")
    assert rs.is_anchor_secret_name(anchor, sa) and not rs.is_token_secret_name(anchor, sa)
    assert not rs.is_anchor_secret_name(sa + "-istio-remote-secret-binding-x", sa)
    first = rs.generation()
    time.sleep(0.002)
    assert int(rs.generation()) > int(first)


def test_token_secret_ref():
    legacy = jwt({"sub": "system:serviceaccount:istio-system:r", "kubernetes.io/serviceaccount/secret.name": "r-token"})
    bound = jwt({"sub": "system:serviceaccount:istio-system:r",
                 "kubernetes.io": {"namespace": "istio-system", "secret": {"name": "r-binding-1", "uid": "u"}}})
    unbound = jwt({"sub": "system:serviceaccount:istio-system:r", "kubernetes.io": {"namespace": "istio-system"}})
    assert rs.token_secret_ref(legacy) == "r-token"
    assert rs.token_secret_ref(bound) == "r-binding-1"
    assert rs.token_secret_ref(unbound) is None
    assert rs.token_secret_ref("garbage") is None
    assert rs.token_secret_ref(None) is None


def test_revocable_keeps_what_held_tokens_depend_on_and_what_is_not_ours():
    sa = "istio-reader-service-account"
    base, rotated = rs.token_secret_name(sa), rs.token_secret_name(sa, "1700000000001")
    anchor_old, anchor_new = rs.anchor_secret_name(sa, "1"), rs.anchor_secret_name(sa, "2")
    names = [rotated, base, anchor_new, anchor_old, base, "istio-reader-token-x", rs.token_secret_name("other-sa")]
    assert rs.revocable(names, sa, {rotated, anchor_new, None}) == sorted([base, anchor_old])
    assert rs.revocable(names, sa, set(names)) == []
    assert rs.revocable([], sa, set()) == []


def consumer_result(action, cluster="cluster1"):
    ref = {"cluster": cluster, "kind": "Secret", "namespace": "istio-system", "name": "istio-remote-secret-c2", "action": action}
    return {"changed": action != "none", "action": action, "ref": ref}


def test_outcome_keeps_revocations_out_of_the_consumers():
    sa = "istio-reader-service-account"
    revoked = rs.revocation("c2", "istio-system", rs.token_secret_name(sa))
    assert revoked == {"name": rs.token_secret_name(sa), "changed": True, "action": "delete",
                       "key": "c2:istio-system/" + rs.token_secret_name(sa),
                       "before": {"present": True}, "after": {"present": False},
                       "ref": {"kind": "Secret", "namespace": "istio-system", "name": rs.token_secret_name(sa), "action": "delete"}}
    got = rs.outcome([("cluster1", consumer_result("none")), ("cluster3", consumer_result("patch", "cluster3"))], [revoked])
    assert got["changed"] is True
    assert got["consumers"] == [{"name": "cluster1", "changed": False, "action": "none"},
                                {"name": "cluster3", "changed": True, "action": "patch"}]
    assert got["revoked"] == [rs.token_secret_name(sa)]
    # The consumer's Secret carries its cluster; the deleted token Secret is the source cluster's (no cluster).
    assert got["objects"] == [consumer_result("patch", "cluster3")["ref"], revoked["ref"]]


def test_outcome_of_a_revocation_alone_is_a_change_with_no_consumer_written():
    revoked = rs.revocation("c2", "istio-system", rs.anchor_secret_name("r", "1"))
    got = rs.outcome([("cluster1", consumer_result("none"))], [revoked])
    assert (got["changed"], got["consumers"], got["revoked"]) == (
        True, [{"name": "cluster1", "changed": False, "action": "none"}], ["r-istio-remote-secret-binding-1"])
    assert rs.outcome([("cluster1", consumer_result("none"))], []) == {
        "changed": False, "consumers": [{"name": "cluster1", "changed": False, "action": "none"}], "revoked": [], "objects": []}
    assert rs.outcome([], []) == {"changed": False, "consumers": [], "revoked": [], "objects": []}
