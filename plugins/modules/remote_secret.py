#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: remote_secret
short_description: Give other clusters' istiod read access to this cluster (Istio remote secret)
version_added: 0.1.0
description:
  - Builds the Secret C(istio-remote-secret-<cluster_id>) exactly as C(istioctl create-remote-secret) does and
    applies it to one or many consumer clusters, without istioctl.
  - The source cluster is the one addressed by the connection options (O(kubeconfig), O(context), ...). Its
    reader service account's bearer token comes either from a legacy token Secret
    C(<service_account>-istio-remote-secret-token), created if no token Secret exists, or from a TokenRequest
    with an expiry.
  - The token is read and written inside this module run and never returned; the result holds names, changed
    flags and fingerprints only, and the diff shows Secret values as fingerprints.
  - Idempotent. A consumer Secret whose kubeconfig already equals the desired one is not written. With
    O(token_type=token_request), a token already held by a consumer is kept while it stays valid for at least
    O(token_renew_before) seconds, so a re-run mints no token.
  - In check mode nothing is written to any cluster, the token Secret included.
  - Rotation (O(rotate)) issues a new token whatever the consumers hold and writes it to every consumer; the old
    token keeps working until a later run with O(revoke_unused) deletes what it depends on, so the caller can check
    that every istiod has switched in between.
  - TokenRequest tokens are bound to a Secret C(<service_account>-istio-remote-secret-binding-<n>) in the source
    cluster, so deleting that Secret invalidates them before they expire.
  - When the source or a consumer cluster cannot be reached, the task fails naming that cluster and its API server
    and lists the consumers already written. Each consumer's Secret is written in one request, so a consumer holds
    its previous Secret, the new one, or none; running the task again completes the rest.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  cluster_id:
    description:
      - The source cluster's Istio cluster ID (C(global.multiCluster.clusterName)). It names the Secret, its data
        key and the kubeconfig's cluster, context and user.
    type: str
    required: true
  server:
    description:
      - API server URL that the consumers' istiod use to reach the source cluster.
      - Defaults to the server of the source connection.
    type: str
  tls_server_name:
    description: Server name to verify the API server certificate against, written as C(tls-server-name).
    type: str
  namespace:
    description: Namespace of the reader service account in the source cluster.
    type: str
    default: istio-system
  service_account:
    description: The reader service account whose token is embedded.
    type: str
    default: istio-reader-service-account
  token_type:
    description:
      - V(secret) uses a long-lived legacy service-account token Secret (what istioctl does).
      - V(token_request) mints a bound token that expires after O(token_expiration) seconds.
    type: str
    choices: [secret, token_request]
    default: secret
  token_expiration:
    description: Lifetime in seconds of a TokenRequest token.
    type: int
    default: 2592000
  token_renew_before:
    description:
      - With O(token_type=token_request), a consumer's token is replaced when it expires in less than this many
        seconds. Defaults to a third of O(token_expiration).
    type: int
  token_wait_timeout:
    description:
      - Seconds to wait for the token controller to fill a newly created token Secret.
      - The default covers a kube-controller-manager that is still reconnecting after its API server was down (its
        watches retry with a backoff of up to a minute).
    type: int
    default: 120
  consumers:
    description: The clusters whose istiod must read the source cluster; each gets the Secret.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A label for this consumer in results and errors (for example its inventory hostname).
        type: str
        required: true
      kubeconfig:
        description: Path to the consumer's kubeconfig file. Defaults like kubernetes.core does.
        type: path
      context:
        description: Context of the consumer cluster in the kubeconfig.
        type: str
      namespace:
        description: The consumer istiod's system namespace, where the Secret goes.
        type: str
        default: istio-system
  state:
    description:
      - V(present) ensures the Secret in every consumer.
      - V(absent) removes it from every consumer and, with O(delete_token=true), deletes the token Secret this
        module created in the source cluster.
    type: str
    choices: [present, absent]
    default: present
  delete_token:
    description:
      - With O(state=absent), also delete the token Secrets and binding Secrets created by this module in the source
        cluster.
    type: bool
    default: false
  rotate:
    description:
      - With O(state=present), issue a new token and write it to every consumer, even when they hold a valid one.
      - V(secret) tokens come from a new token Secret C(<service_account>-istio-remote-secret-token-<n>);
        V(token_request) tokens are minted bound to a new binding Secret.
      - Nothing is revoked; see O(revoke_unused).
    type: bool
    default: false
  revoke_unused:
    description:
      - With O(state=present), after the consumers are up to date, delete the token Secrets
        (C(<service_account>-istio-remote-secret-token[-<n>]), istioctl's included) and the binding Secrets this
        module created that no consumer's token depends on, which invalidates those tokens.
      - A Secret that the token of any listed consumer depends on is never deleted.
    type: bool
    default: false
notes:
  - The reader service account and its RBAC come from Istio's base and istiod charts; install the control plane
    (or the remote profile) on the source cluster first.
"""

EXAMPLES = r"""
- name: Let cluster1's istiod read cluster2
  meshops.istio.remote_secret:
    context: kind-cluster2
    cluster_id: cluster2
    server: https://cluster2.example.com:6443
    consumers:
      - name: cluster1
        context: kind-cluster1

- name: Short-lived tokens, renewed when less than a week is left
  meshops.istio.remote_secret:
    context: kind-cluster2
    cluster_id: cluster2
    token_type: token_request
    token_expiration: 2592000
    token_renew_before: 604800
    consumers:
      - {name: cluster1, context: kind-cluster1}
      - {name: cluster3, context: kind-cluster3}
"""

RETURN = r"""
secret_name:
  description: Name of the remote Secret in the consumers.
  returned: always
  type: str
  sample: istio-remote-secret-cluster2
server:
  description: API server URL written into the kubeconfig.
  returned: always
  type: str
  sample: https://cluster2.example.com:6443
consumers:
  description:
    - What happened in each consumer, one entry per consumer and nothing else; the token and binding Secrets deleted
      in the source cluster are in RV(revoked).
    - When a cluster is lost halfway and the task fails, the consumers written before the failure.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The consumer's name as given.
      type: str
    changed:
      description: Whether its Secret was (or, in check mode, would be) written.
      type: bool
    action:
      description: V(create), V(patch), V(delete) or V(none).
      type: str
revoked:
  description:
    - Names of the token and binding Secrets deleted (in check mode, to be deleted) in the source cluster by
      O(revoke_unused) or O(delete_token), which revokes the tokens that depend on them.
    - When a cluster is lost halfway and the task fails, those deleted before the failure.
  returned: always
  type: list
  elements: str
  sample: [istio-reader-service-account-istio-remote-secret-token]
objects:
  description:
    - The objects written (in check mode, that would be written), for a report of what the run changed. Remote secrets
      carry the consumer's name in C(cluster); the token Secret (or a C(TokenRequest)), a binding Secret and the
      deleted token and binding Secrets (RV(revoked)) are in the source cluster and have no C(cluster).
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: The consumer's name as given, for objects in a consumer.
      type: str
    kind:
      description: V(Secret), or V(TokenRequest) for a minted token.
      type: str
    namespace:
      description: Object namespace.
      type: str
    name:
      description: Object name (the service account's, for a V(TokenRequest)).
      type: str
    action:
      description: V(create), V(patch) or V(delete).
      type: str
token:
  description: Where the token came from; never the token itself.
  returned: always
  type: dict
  contains:
    type:
      description: V(secret) or V(token_request).
      type: str
    secret_name:
      description: The token Secret used with O(token_type=secret); the binding Secret with O(token_type=token_request).
      type: str
    created:
      description: Whether a token Secret was created or a token minted in this run.
      type: bool
    expires:
      description: Earliest expiry (Unix time) of the tokens the consumers now hold, for TokenRequest tokens.
      type: int
"""

import base64
import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube, remote_secret as rs

try:
    from kubernetes.client.rest import ApiException
except ImportError:
    ApiException = Exception

MANAGED_SELECTOR = ",".join("%s=%s" % kv for kv in kube.MANAGED_BY.items())


def _consumer_argspec():
    return dict(
        name=dict(type="str", required=True),
        kubeconfig=dict(type="path"),
        context=dict(type="str"),
        namespace=dict(type="str", default="istio-system"),
    )


def argument_spec():
    spec = kube.auth_argument_spec()
    spec.update(
        cluster_id=dict(type="str", required=True),
        server=dict(type="str"),
        tls_server_name=dict(type="str"),
        namespace=dict(type="str", default="istio-system"),
        service_account=dict(type="str", default="istio-reader-service-account"),
        token_type=dict(type="str", choices=["secret", "token_request"], default="secret", no_log=False),
        token_expiration=dict(type="int", default=2592000, no_log=False),
        token_renew_before=dict(type="int", no_log=False),
        token_wait_timeout=dict(type="int", default=120, no_log=False),
        consumers=dict(type="list", elements="dict", required=True, options=_consumer_argspec()),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        delete_token=dict(type="bool", default=False, no_log=False),
        rotate=dict(type="bool", default=False),
        revoke_unused=dict(type="bool", default=False),
    )
    return spec


class RemoteSecret(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.src = kube.Kube(label=self.p["cluster_id"], **kube.auth_from_params(self.p))
        self.token_info = {"type": self.p["token_type"], "created": False}
        self.anchor_created = None  # name of a binding Secret this run creates (reported in objects)

        # Kept on the object so a failure halfway can say what was done: (consumer, ensure result) in order, one per
        # consumer written (or found up to date); and the token and binding Secrets deleted in the source cluster.
        self.results = []
        self.revocations = []

    def hide(self, secret):
        # Belt and braces: even if a token ended up in an error message, Ansible masks it.
        if secret:
            self.module._module.no_log_values.add(secret)

    def fail(self, msg):
        self.module.fail_json(msg="%s: %s" % (self.p["cluster_id"], msg))

    # ---- token and CA from the source cluster ------------------------------------------------------------
    def _ensure_service_account(self):
        sa = self.src.get("v1", "ServiceAccount", self.p["service_account"], self.p["namespace"])
        # In check mode the control plane that brings the account may itself be only planned.
        if sa is None and not self.check:
            self.fail("ServiceAccount %s/%s does not exist in the source cluster; install Istio's base chart "
                      "(the control plane, or the remote profile) there first" % (self.p["namespace"], self.p["service_account"]))

    def _token_secrets(self):
        """The account's legacy token Secrets, best first: ours (istioctl's name, then rotated ones, newest first),
        then any other."""
        ns, sa = self.p["namespace"], self.p["service_account"]
        found = [s for s in self.src.list("v1", "Secret", namespace=ns)
                 if s.get("type") == rs.TOKEN_SECRET_TYPE
                 and ((s["metadata"].get("annotations") or {}).get(rs.SA_NAME_ANNOTATION) == sa)]

        def rank(s):
            name = s["metadata"]["name"]
            if not rs.is_token_secret_name(name, sa):
                return (1, 0, name)
            # After a rotation the newest token Secret wins, so an interrupted rotation is completed, not undone.
            return (0, -int(name.rpartition("-")[2]) if name != rs.token_secret_name(sa) else 0, name)
        return sorted(found, key=rank)

    def _token_secret(self):
        """The legacy token Secret: an existing one for the account, else ours (created unless check mode); with
        rotate, always a new one."""
        ns, sa = self.p["namespace"], self.p["service_account"]
        candidates = self._token_secrets()
        ours = rs.token_secret_name(sa)
        if self.p["rotate"]:
            ours = rs.token_secret_name(sa, rs.generation())
            candidates = []
        if candidates:
            secret = candidates[0]
        elif self.check:
            self.token_info.update(secret_name=ours, created=True)
            return None
        else:
            body = {"apiVersion": "v1", "kind": "Secret", "type": rs.TOKEN_SECRET_TYPE,
                    "metadata": {"name": ours, "namespace": ns, "labels": dict(kube.MANAGED_BY),
                                 "annotations": {rs.SA_NAME_ANNOTATION: sa}}}
            self.src.resource("v1", "Secret").create(body=body, namespace=ns)
            self.token_info["created"] = True
            secret = body
        self.token_info["secret_name"] = secret["metadata"]["name"]
        deadline = time.time() + self.p["token_wait_timeout"]
        while True:
            data = secret.get("data") or {}
            if data.get("token") and data.get("ca.crt"):
                return data
            if time.time() > deadline:
                self.fail("token Secret %s/%s was not filled by the token controller within %ss (is "
                          "kube-controller-manager running with a service-account key?)"
                          % (ns, secret["metadata"]["name"], self.p["token_wait_timeout"]))
            time.sleep(0.5)
            secret = self.src.get("v1", "Secret", secret["metadata"]["name"], ns) or {}

    def _root_ca(self):
        cm = self.src.get("v1", "ConfigMap", "kube-root-ca.crt", self.p["namespace"])
        pem = ((cm or {}).get("data") or {}).get("ca.crt")
        if not pem and self.check:
            return None
        if not pem:
            self.fail("ConfigMap %s/kube-root-ca.crt has no ca.crt" % self.p["namespace"])
        return base64.b64encode(pem.encode("utf-8")).decode("ascii")

    def _anchors(self):
        """Binding Secrets this module created for the account, newest first."""
        sa = self.p["service_account"]
        found = [s for s in self.src.list("v1", "Secret", namespace=self.p["namespace"], label_selector=MANAGED_SELECTOR)
                 if rs.is_anchor_secret_name(s["metadata"]["name"], sa)]
        return sorted(found, key=lambda s: -int(s["metadata"]["name"].rpartition("-")[2]))

    def _anchor(self):
        """The Secret new tokens are bound to: the newest binding Secret, or a new one (always with rotate)."""
        anchors = [] if self.p["rotate"] else self._anchors()
        if anchors:
            anchor = anchors[0]
        else:
            ns = self.p["namespace"]
            name = rs.anchor_secret_name(self.p["service_account"], rs.generation())
            anchor = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": name, "namespace": ns, "labels": dict(kube.MANAGED_BY),
                                   "annotations": {rs.SA_NAME_ANNOTATION: self.p["service_account"]}}}
            if not self.check:
                anchor = self.src.resource("v1", "Secret").create(body=anchor, namespace=ns).to_dict()
            self.anchor_created = name
        self.token_info["secret_name"] = anchor["metadata"]["name"]
        return anchor

    def _mint(self):
        anchor = self._anchor()
        if self.check:
            self.token_info["created"] = True
            return None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.p["token_expiration"],
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": anchor["metadata"]["name"],
                                            "uid": anchor["metadata"]["uid"]}}}
        try:
            resp = self.src.core().create_namespaced_service_account_token(
                self.p["service_account"], self.p["namespace"], body)
        except ApiException as e:
            self.fail("TokenRequest for %s/%s failed: %s" % (self.p["namespace"], self.p["service_account"], e.reason))
        self.token_info["created"] = True
        self.hide(resp.status.token)
        return resp.status.token

    # ---- consumers --------------------------------------------------------------------------------------
    def _consumer(self, c):
        auth = dict((k, c[k]) for k in ("kubeconfig", "context") if c.get(k))
        try:
            return kube.Kube(label=c["name"], **auth)
        except Exception as e:
            self.module.fail_json(msg="%s: cannot connect to consumer cluster %s: %s" % (self.p["cluster_id"], c["name"], e))

    def present(self):
        self._ensure_service_account()
        cid = self.p["cluster_id"]
        server = self.p["server"] or self.src.k8s.configuration.host
        consumers = [(c, self._consumer(c)) for c in self.p["consumers"]]
        if self.p["token_type"] == "secret":
            data = self._token_secret()
            ca = data["ca.crt"] if data else None
            shared = base64.b64decode(data["token"]).decode("utf-8") if data else None
            self.hide(shared)
        else:
            ca, shared = self._root_ca(), None
        placeholder = "<token to be issued>"
        renew = self.p["token_renew_before"]
        if renew is None:
            renew = self.p["token_expiration"] // 3
        results, expiries = self.results, []
        minted = None
        for c, k in consumers:
            name = rs.secret_name(cid)
            existing = rs.parse_secret_kubeconfig(k.get("v1", "Secret", name, c["namespace"]), cid)
            token = shared
            if self.p["token_type"] == "token_request":
                held = rs.kubeconfig_token(existing)
                wanted = rs.build_kubeconfig(cid, server, ca, held, self.p["tls_server_name"])
                self.hide(held)
                if not self.p["rotate"] and rs.same_except_token(existing, wanted) and rs.token_still_good(
                        held, self.p["namespace"], self.p["service_account"], renew):
                    token = held
                else:
                    if minted is None:
                        minted = self._mint() or placeholder
                    token = minted
                if token != placeholder:
                    expiries.append(rs.token_expiry(token))
            desired = rs.build_secret(cid, rs.build_kubeconfig(cid, server, ca or "", token or placeholder,
                                                               self.p["tls_server_name"]),
                                      c["namespace"], labels=kube.MANAGED_BY)
            r = k.ensure(desired, check_mode=self.check)
            r["key"] = "%s:%s/%s" % (c["name"], c["namespace"], name)
            r["ref"] = kube.object_ref(desired, r["action"], cluster=c["name"])
            results.append((c, r))
        if expiries and all(expiries):
            self.token_info["expires"] = min(expiries)
        if self.p["revoke_unused"]:
            self.revoke_unused(results)
        return server

    def revoke_unused(self, results):
        """Delete the token and binding Secrets no consumer's token depends on (which revokes those tokens)."""
        cid, ns, sa = self.p["cluster_id"], self.p["namespace"], self.p["service_account"]
        in_use = set([self.token_info.get("secret_name")])
        for c, r in results:
            held = rs.kubeconfig_token(rs.parse_secret_kubeconfig(r.get("object"), cid))
            self.hide(held)
            in_use.add(rs.token_secret_ref(held))
        names = [s["metadata"]["name"] for s in self._token_secrets() + self._anchors()]
        for name in rs.revocable(names, sa, in_use):
            self._revoke(name)

    def _revoke(self, name):
        """Delete one token or binding Secret of the source cluster (which revokes the tokens depending on it)."""
        ns = self.p["namespace"]
        if self.src.delete("v1", "Secret", name, ns, check_mode=self.check):
            self.revocations.append(rs.revocation(self.p["cluster_id"], ns, name))

    def outcome(self):
        """changed, consumers, revoked and objects (see rs.outcome), of what was done so far."""
        return rs.outcome([(c["name"], r) for c, r in self.results], self.revocations)

    def absent(self):
        cid = self.p["cluster_id"]
        results = self.results
        for c, k in [(c, self._consumer(c)) for c in self.p["consumers"]]:
            deleted = k.delete("v1", "Secret", rs.secret_name(cid), c["namespace"], check_mode=self.check)
            results.append((c, {"changed": deleted, "action": "delete" if deleted else "none", "key": c["name"],
                                "before": {"present": deleted}, "after": {"present": False},
                                "ref": dict(cluster=c["name"], kind="Secret", namespace=c["namespace"],
                                            name=rs.secret_name(cid), action="delete" if deleted else "none")}))
        if self.p["delete_token"]:
            sa = self.p["service_account"]
            # Only what this module created (labelled): a token Secret istioctl made may serve someone else.
            ours = [s["metadata"]["name"] for s in self.src.list("v1", "Secret", namespace=self.p["namespace"], label_selector=MANAGED_SELECTOR)
                    if rs.is_token_secret_name(s["metadata"]["name"], sa) or rs.is_anchor_secret_name(s["metadata"]["name"], sa)]
            for name in sorted(ours):
                self._revoke(name)
        return None


def _failure(e):
    """A short, secret-free reason: ApiException's text carries response headers and bodies, so only its status."""
    if isinstance(e, ApiException):
        return "API request failed: %s %s" % (e.status, e.reason)
    return str(e)


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    name = rs.secret_name(module.params["cluster_id"])
    job = None

    try:
        job = RemoteSecret(module)
        if module.params["state"] == "present":
            server = job.present()
        else:
            server = job.absent()
    except (kube.KubeError, kube.TransportError, OSError, ApiException) as e:
        # A cluster lost halfway: say which one, and which consumers already hold their (complete) Secret. Each
        # consumer's Secret is one API write, so the others hold the previous complete one or none.
        done = job.outcome() if job else rs.outcome([], [])
        written = [c["name"] for c in done["consumers"]]
        module.fail_json(msg="remote secret %s (consumers %s): %s; %s%s" % (
            name, ", ".join(c["name"] for c in module.params["consumers"]), _failure(e),
            "written before the failure: %s" % ", ".join(written) if written else "no consumer was written",
            "; revoked before the failure: %s" % ", ".join(done["revoked"]) if done["revoked"] else ""),
            secret_name=name, consumers=done["consumers"], revoked=done["revoked"], token=job.token_info if job else {})
    done = job.outcome()
    objects = done["objects"]
    info, ns = job.token_info, module.params["namespace"]
    if info.get("created"):
        # The token Secret created (or the token minted) in the source cluster.
        objects.insert(0, dict(kind="Secret", namespace=ns, name=info["secret_name"], action="create")
                       if info["type"] == "secret" else
                       dict(kind="TokenRequest", namespace=ns, name=module.params["service_account"], action="create"))
    if job.anchor_created:
        objects.insert(0, dict(kind="Secret", namespace=ns, name=job.anchor_created, action="create"))
    out = dict(
        changed=done["changed"],
        secret_name=name,
        server=server or "",
        consumers=done["consumers"],
        revoked=done["revoked"],
        token=job.token_info,
        objects=objects,
    )
    if module._diff:
        out["diff"] = kube.diff_of([r for dummy, r in job.results] + job.revocations)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
