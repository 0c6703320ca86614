#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: remote_secrets_info
short_description: The Istio remote secrets a cluster holds, whose cluster each reaches and when its token expires
version_added: 0.2.0
description:
  - Lists the Secrets labelled C(istio/multiCluster=true) in the Istio system namespace of the cluster, that is the
    remote secrets its istiod reads, whoever wrote them (this collection, C(istioctl create-remote-secret), by hand).
  - For each, returns the cluster ID it holds, the API server URL it points at, and how its bearer token expires.
    A TokenRequest token carries an C(exp) claim; a legacy service-account token Secret's token has none and does
    not expire (it is valid until its Secret is deleted).
  - Never returns or prints a token; the token is only decoded to read its expiry claim.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes.READ_ONLY
options:
  namespace:
    description: The Istio system namespace, where istiod reads remote secrets.
    type: str
    default: istio-system
"""

EXAMPLES = r"""
- name: Which clusters cluster1's istiod reads, and until when
  meshops.istio.remote_secrets_info:
    context: cluster1
  register: held

- name: Show them
  ansible.builtin.debug:
    msg: "{{ held.secrets | map(attribute='cluster_id') | list }}"
"""

RETURN = r"""
secrets:
  description: One entry per cluster held (a Secret may hold several clusters, one per data key).
  returned: always
  type: list
  elements: dict
  contains:
    secret:
      description: Name of the Secret.
      type: str
      sample: istio-remote-secret-cluster2
    cluster_id:
      description: The cluster ID the Secret holds (its data key).
      type: str
      sample: cluster2
    server:
      description: The API server URL in the embedded kubeconfig (empty when it cannot be parsed).
      type: str
    auth:
      description: V(token) for a bearer token, V(other) for another credential, V(unreadable) for a kubeconfig that
        cannot be parsed.
      type: str
    token_type:
      description: V(token_request) (a bound token with an expiry), V(legacy) (a token Secret's token, no expiry)
        or V(none).
      type: str
    expires:
      description: The token's expiry (Unix time), or null when it does not expire.
      type: int
    managed_by:
      description: The Secret's C(app.kubernetes.io/managed-by) label (empty for C(istioctl) or hand-made Secrets).
      type: str
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube, remote_secret as rs


def main():
    spec = kube.auth_argument_spec()
    spec.update(namespace=dict(type="str", default="istio-system"))
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    k = kube.Kube(**kube.auth_from_params(p))
    try:
        found = k.list("v1", "Secret", namespace=p["namespace"], label_selector="%s=true" % rs.MULTICLUSTER_LABEL)
    except Exception as e:
        module.fail_json(msg="cannot list remote secrets in namespace %s: %s" % (p["namespace"], e))
    out = []
    for secret in sorted(found, key=lambda s: s["metadata"]["name"]):
        labels = secret["metadata"].get("labels") or {}
        for cluster_id in sorted((secret.get("data") or {}).keys()):
            kubeconfig = rs.parse_secret_kubeconfig(secret, cluster_id)
            token = rs.kubeconfig_token(kubeconfig)
            if token:
                # Masked by Ansible should any message ever contain it.
                module._module.no_log_values.add(token)
            out.append(dict(secret=secret["metadata"]["name"], cluster_id=cluster_id, managed_by=labels.get("app.kubernetes.io/managed-by", ""),
                            **rs.describe_kubeconfig(kubeconfig)))
    module.exit_json(changed=False, secrets=out)


if __name__ == "__main__":
    main()
