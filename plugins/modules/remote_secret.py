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
    description: Seconds to wait for the token controller to fill a newly created token Secret.
    type: int
    default: 30
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
    description: With O(state=absent), also delete the token Secret created by this module in the source cluster.
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
  description: What happened in each consumer.
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
objects:
  description:
    - The objects written (in check mode, that would be written), for a report of what the run changed. Remote secrets
      carry the consumer's name in C(cluster); the token Secret (or a C(TokenRequest)) is in the source cluster and has
      no C(cluster).
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
      description: The token Secret used, with O(token_type=secret).
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
        token_wait_timeout=dict(type="int", default=30, no_log=False),
        consumers=dict(type="list", elements="dict", required=True, options=_consumer_argspec()),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        delete_token=dict(type="bool", default=False, no_log=False),
    )
    return spec


class RemoteSecret(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.src = kube.Kube(label=self.p["cluster_id"], **kube.auth_from_params(self.p))
        self.token_info = {"type": self.p["token_type"], "created": False}

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

    def _token_secret(self):
        """The legacy token Secret: an existing one for the account, else ours (created unless check mode)."""
        ns, sa = self.p["namespace"], self.p["service_account"]
        candidates = [s for s in self.src.list("v1", "Secret", namespace=ns)
                      if s.get("type") == rs.TOKEN_SECRET_TYPE
                      and ((s["metadata"].get("annotations") or {}).get(rs.SA_NAME_ANNOTATION) == sa)]
        ours = rs.token_secret_name(sa)
        candidates.sort(key=lambda s: (s["metadata"]["name"] != ours, s["metadata"]["name"]))
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

    def _mint(self):
        if self.check:
            self.token_info["created"] = True
            return None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.p["token_expiration"]}}
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
        results, expiries = [], []
        minted = None
        for c, k in consumers:
            name = rs.secret_name(cid)
            existing = rs.parse_secret_kubeconfig(k.get("v1", "Secret", name, c["namespace"]), cid)
            token = shared
            if self.p["token_type"] == "token_request":
                held = rs.kubeconfig_token(existing)
                wanted = rs.build_kubeconfig(cid, server, ca, held, self.p["tls_server_name"])
                self.hide(held)
                if rs.same_except_token(existing, wanted) and rs.token_still_good(
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
        return server, results

    def absent(self):
        cid = self.p["cluster_id"]
        results = []
        for c, k in [(c, self._consumer(c)) for c in self.p["consumers"]]:
            deleted = k.delete("v1", "Secret", rs.secret_name(cid), c["namespace"], check_mode=self.check)
            results.append((c, {"changed": deleted, "action": "delete" if deleted else "none", "key": c["name"],
                                "before": {"present": deleted}, "after": {"present": False},
                                "ref": dict(cluster=c["name"], kind="Secret", namespace=c["namespace"],
                                            name=rs.secret_name(cid), action="delete" if deleted else "none")}))
        if self.p["delete_token"]:
            name = rs.token_secret_name(self.p["service_account"])
            cur = self.src.get("v1", "Secret", name, self.p["namespace"])
            if cur and (cur["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "meshops.istio":
                self.src.delete("v1", "Secret", name, self.p["namespace"], check_mode=self.check)
                results.append(({"name": "%s (token)" % cid}, {"changed": True, "action": "delete", "key": name,
                                                               "before": {"present": True}, "after": {"present": False},
                                                               "ref": dict(kind="Secret", namespace=self.p["namespace"],
                                                                           name=name, action="delete")}))
        return None, results


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    job = RemoteSecret(module)
    if module.params["state"] == "present":
        server, results = job.present()
    else:
        server, results = job.absent()
    changed = any(r["changed"] for dummy, r in results)
    objects = kube.written([r["ref"] for dummy, r in results])
    info, ns = job.token_info, module.params["namespace"]
    if info.get("created"):
        # The token Secret created (or the token minted) in the source cluster.
        objects.insert(0, dict(kind="Secret", namespace=ns, name=info["secret_name"], action="create")
                       if info["type"] == "secret" else
                       dict(kind="TokenRequest", namespace=ns, name=module.params["service_account"], action="create"))
    out = dict(
        changed=changed,
        secret_name=rs.secret_name(module.params["cluster_id"]),
        server=server or "",
        consumers=[dict(name=c["name"], changed=r["changed"], action=r["action"]) for c, r in results],
        token=job.token_info,
        objects=objects,
    )
    if module._diff:
        out["diff"] = kube.diff_of([r for dummy, r in results])
    module.exit_json(**out)


if __name__ == "__main__":
    main()
