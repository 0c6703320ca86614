# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remote secrets, built exactly as `istioctl create-remote-secret` builds them, without istioctl.

The Secret `istio-remote-secret-<id>` (label istio/multiCluster=true, annotation networking.istio.io/cluster)
holds one key, the cluster ID, whose value is a kubeconfig with cluster, context and user all named after the
cluster ID, the API server URL, the cluster's service-account CA and a bearer token of the reader account.
Pure functions only: no cluster access here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import time

try:
    import yaml
except ImportError:
    yaml = None  # AnsibleK8SModule reports a missing PyYAML before this is used

MULTICLUSTER_LABEL = "istio/multiCluster"
CLUSTER_ANNOTATION = "networking.istio.io/cluster"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def secret_name(cluster_id):
    return "istio-remote-secret-%s" % cluster_id


def token_secret_name(service_account, generation=None):
    """The legacy token Secret's name: istioctl's (and the first one this collection creates), then one per rotation."""
    name = "%s-istio-remote-secret-token" % service_account
    return name if generation is None else "%s-%s" % (name, generation)


def anchor_secret_name(service_account, generation):
    """The Secret a TokenRequest token is bound to: deleting it invalidates every token bound to it."""
    return "%s-istio-remote-secret-binding-%s" % (service_account, generation)


def is_token_secret_name(name, service_account):
    """True for the token Secrets this collection (or istioctl) names: the only ones a rotation may revoke."""
    base = token_secret_name(service_account)
    return name == base or (name.startswith(base + "-") and name[len(base) + 1:].isdigit())


def is_anchor_secret_name(name, service_account):
    prefix = "%s-istio-remote-secret-binding-" % service_account
    return name.startswith(prefix) and name[len(prefix):].isdigit()


def generation():
    """A new, increasing suffix for rotated token Secrets and anchors (milliseconds since the epoch)."""
    return str(int(time.time() * 1000))


def token_secret_ref(token):
    """Name of the Secret a service-account token depends on, from its claims: the legacy token Secret
    (kubernetes.io/serviceaccount/secret.name) or the object a bound token is bound to (kubernetes.io.secret.name).
    None for tokens bound to nothing (or unreadable)."""
    claims = jwt_claims(token) if token else None
    if not isinstance(claims, dict):
        return None
    legacy = claims.get("kubernetes.io/serviceaccount/secret.name")
    if isinstance(legacy, str) and legacy:
        return legacy
    bound = (claims.get("kubernetes.io") or {}).get("secret") if isinstance(claims.get("kubernetes.io"), dict) else None
    if isinstance(bound, dict) and isinstance(bound.get("name"), str):
        return bound["name"]
    return None


def build_kubeconfig(cluster_id, server, ca_data, token, tls_server_name=None):
    """The embedded kubeconfig (dict). ca_data is the base64 CA bundle as found in the token Secret."""
    cluster = {"certificate-authority-data": ca_data, "server": server}
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_id, "cluster": cluster}],
        "contexts": [{"name": cluster_id, "context": {"cluster": cluster_id, "user": cluster_id}}],
        "current-context": cluster_id,
        "preferences": {},
        "users": [{"name": cluster_id, "user": {"token": token}}],
    }


def dump_kubeconfig(kubeconfig):
    # client-go writes keys sorted, block style; so does this, byte for byte.
    return yaml.safe_dump(kubeconfig, default_flow_style=False, sort_keys=True)


def build_secret(cluster_id, kubeconfig, namespace, labels=None):
    """The remote Secret (dict) with base64 data, ready to apply to a consumer cluster."""
    meta_labels = {MULTICLUSTER_LABEL: "true"}
    meta_labels.update(labels or {})
    payload = dump_kubeconfig(kubeconfig).encode("utf-8")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(cluster_id),
            "namespace": namespace,
            "labels": meta_labels,
            "annotations": {CLUSTER_ANNOTATION: cluster_id},
        },
        "data": {cluster_id: base64.b64encode(payload).decode("ascii")},
    }


def parse_secret_kubeconfig(secret, cluster_id):
    """The kubeconfig dict held by an existing remote Secret for cluster_id, or None if absent or unreadable."""
    if not secret:
        return None
    raw = (secret.get("data") or {}).get(cluster_id)
    if not raw:
        return None
    try:
        return yaml.safe_load(base64.b64decode(raw))
    except Exception:  # hand-edited garbage is simply "not the desired state"
        return None


def kubeconfig_token(kubeconfig):
    try:
        return kubeconfig["users"][0]["user"]["token"]
    except (KeyError, IndexError, TypeError):
        return None


def jwt_claims(token):
    """The claims of a JWT, unverified (we only read back tokens we wrote), or None."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except Exception:
        return None


def token_still_good(token, namespace, service_account, min_remaining, now=None):
    """True when token is a bound token of namespace/service_account valid for at least min_remaining seconds.
    Used to keep a TokenRequest token across runs instead of minting a new one every time."""
    claims = jwt_claims(token) if token else None
    if not claims:
        return False
    if claims.get("sub") != "system:serviceaccount:%s:%s" % (namespace, service_account):
        return False
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        return False
    return exp - (now if now is not None else time.time()) >= min_remaining


def token_expiry(token):
    claims = jwt_claims(token) if token else None
    exp = (claims or {}).get("exp")
    return int(exp) if isinstance(exp, (int, float)) else None


def same_except_token(a, b):
    """True when two kubeconfigs differ at most in the bearer token."""
    if not a or not b:
        return False
    a2, b2 = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    for kc in (a2, b2):
        try:
            kc["users"][0]["user"].pop("token", None)
        except (KeyError, IndexError, TypeError, AttributeError):
            return False
    return a2 == b2


def describe_kubeconfig(kubeconfig):
    """What a report may say about a remote secret's kubeconfig: server, kind of credential and token expiry.
    Never the token. A TokenRequest token carries an exp claim; a legacy token Secret's token has none."""
    if not isinstance(kubeconfig, dict):
        return {"server": "", "auth": "unreadable", "token_type": "none", "expires": None}
    try:
        server = kubeconfig["clusters"][0]["cluster"].get("server") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        server = ""
    token = kubeconfig_token(kubeconfig)
    if not token:
        return {"server": server, "auth": "other", "token_type": "none", "expires": None}
    expires = token_expiry(token)
    return {"server": server, "auth": "token", "token_type": "legacy" if expires is None else "token_request",
            "expires": expires}


# ---- what a run did: consumers and revocations kept apart ---------------------------------------------------------
def revocable(names, service_account, in_use):
    """The token and binding Secrets to delete, sorted: those this collection (or istioctl) names for the account that
    no consumer's token depends on (in_use: names of the Secrets held tokens depend on)."""
    return sorted(set(n for n in names
                      if (is_token_secret_name(n, service_account) or is_anchor_secret_name(n, service_account))
                      and n not in in_use))


def revocation(cluster_id, namespace, name):
    """The result of deleting (in check mode: planning to delete) one token or binding Secret in the source cluster:
    its diff key and before/after, and the object written, which has no cluster (it is the source cluster's)."""
    return {"name": name, "changed": True, "action": "delete", "key": "%s:%s/%s" % (cluster_id, namespace, name),
            "before": {"present": True}, "after": {"present": False},
            "ref": {"kind": "Secret", "namespace": namespace, "name": name, "action": "delete"}}


def outcome(consumers, revocations):
    """What a run reports, from consumers, a list of (consumer name, result with changed, action and ref), and
    revocations, a list of revocation() results: changed, the per-consumer report (consumers only), the names revoked
    and the objects written (consumers' Secrets first, then the deleted token and binding Secrets)."""
    return {
        "changed": any(r["changed"] for dummy, r in consumers) or any(r["changed"] for r in revocations),
        "consumers": [{"name": name, "changed": r["changed"], "action": r["action"]} for name, r in consumers],
        "revoked": [r["name"] for r in revocations],
        "objects": [r["ref"] for dummy, r in consumers if r["ref"].get("action") not in (None, "none")]
        + [r["ref"] for r in revocations],
    }
