#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cacerts
short_description: Plug a cluster's intermediate CA into Istio (the cacerts Secret)
version_added: 0.1.0
description:
  - Ensures the Secret C(cacerts) in the Istio system namespace holds exactly C(ca-cert.pem), C(ca-key.pem),
    C(root-cert.pem) and C(cert-chain.pem) from the given files, so that istiod signs workload certificates with
    this cluster's intermediate of the mesh's shared root.
  - istiod reads C(cacerts) only at start-up. When the Secret is created or changed while istiod Deployments exist,
    they are restarted (like C(kubectl rollout restart)) and the result says which.
  - Never silently replaces a root. If the cluster already has a C(cacerts) Secret whose root differs from
    O(root_cert_path), the module fails and explains, unless O(replace_root=true).
  - The key is read on the controller and written to the cluster only; it is never returned or shown in a diff.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  namespace:
    description: The Istio system namespace.
    type: str
    default: istio-system
  ca_cert_path:
    description: PEM file of this cluster's intermediate CA certificate.
    type: path
  ca_key_path:
    description: PEM file of the intermediate CA's private key.
    type: path
  root_cert_path:
    description: PEM file of the mesh root certificate (several roots may be concatenated).
    type: path
  cert_chain_path:
    description: PEM file of the chain from the intermediate to the root. Defaults to the intermediate followed by the root.
    type: path
  restart_istiod:
    description: Restart the istiod Deployments of the namespace when the Secret changes.
    type: bool
    default: true
  replace_root:
    description: Allow replacing a C(cacerts) Secret that carries a different root. Workloads keep failing mTLS
      across clusters until they get certificates from the new root.
    type: bool
    default: false
  root_check_only:
    description:
      - Only compare the root the cluster's C(cacerts) holds with O(root_cert_path) and return both (fingerprints and
        subjects); never write, never fail on a mismatch. Lets a play compare every cluster before any of them is
        written (the C(trust) role does).
      - When O(root_cert_path) does not exist yet (a root still to be generated, in check mode), an existing
        C(cacerts) counts as a mismatch.
    type: bool
    default: false
  state:
    description:
      - V(present) ensures the Secret.
      - V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Plug cluster1's intermediate into Istio
  meshops.istio.cacerts:
    context: cluster1
    ca_cert_path: /etc/meshops/ca/cluster1/ca-cert.pem
    ca_key_path: /etc/meshops/ca/cluster1/ca-key.pem
    root_cert_path: /etc/meshops/ca/root-cert.pem
"""

RETURN = r"""
root_sha256:
  description: SHA-256 of the C(root-cert.pem) the cluster now holds (empty when there is none).
  returned: always
  type: str
action:
  description: V(create), V(patch), V(delete) or V(none).
  returned: always
  type: str
root_fingerprint:
  description: SHA-256 fingerprints (and subjects) of the certificates in O(root_cert_path), the declared root.
  returned: always
  type: str
  sample: SHA256 3F:0A:...:9C (CN=Root CA,O=Istio)
current_root_fingerprint:
  description: SHA-256 fingerprints (and subjects) of the root the cluster's C(cacerts) held before this run (V(none)
    when there was no C(cacerts)).
  returned: always
  type: str
root_matches:
  description: Whether the cluster's C(cacerts) held the declared root before this run (V(true) when it had none).
  returned: always
  type: bool
restarted:
  description: istiod Deployments restarted because the Secret changed.
  returned: always
  type: list
  elements: str
objects:
  description: The objects written (in check mode, that would be written) - the Secret and the restarted istiod Deployments.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(Secret) or V(Deployment).
      type: str
    namespace:
      description: Object namespace.
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create), V(patch) (for a Deployment, the restart) or V(delete).
      type: str
"""

import base64
import datetime
import hashlib
import os

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import ca, kube

FILES = ca.CACERTS_FILES


def sha256_of_b64(value):
    return hashlib.sha256(base64.b64decode(value)).hexdigest() if value else ""


def read(path):
    with open(path, "rb") as f:
        return f.read()


def restart_istiods(k, namespace, check_mode):
    """What `kubectl rollout restart` does: bump a pod-template annotation of every istiod Deployment."""
    names = [d["metadata"]["name"] for d in k.list("apps/v1", "Deployment", namespace=namespace, label_selector="app=istiod")]
    if not check_mode:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}
        for name in names:
            k.resource("apps/v1", "Deployment").patch(body=patch, name=name, namespace=namespace,
                                                      content_type="application/merge-patch+json")
    return names


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        ca_cert_path=dict(type="path"),
        ca_key_path=dict(type="path", no_log=False),
        root_cert_path=dict(type="path"),
        cert_chain_path=dict(type="path"),
        restart_istiod=dict(type="bool", default=True),
        replace_root=dict(type="bool", default=False),
        root_check_only=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True,
                              required_if=[("state", "present", ("ca_cert_path", "ca_key_path", "root_cert_path"))])
    p = module.params
    ns = p["namespace"]
    k = kube.Kube(**kube.auth_from_params(p))
    current = k.get("v1", "Secret", "cacerts", ns)
    current_pem = ((current or {}).get("data") or {}).get("root-cert.pem")
    current_root = sha256_of_b64(current_pem)
    current_fp = ca.describe_roots(base64.b64decode(current_pem) if current_pem else b"")
    facts = dict(root_sha256="", root_fingerprint="none", current_root_fingerprint=current_fp, root_matches=True)
    if p["state"] == "absent":
        gone = k.delete("v1", "Secret", "cacerts", ns, check_mode=module.check_mode)
        module.exit_json(changed=gone, action="delete" if gone else "none", restarted=[],
                         objects=[dict(kind="Secret", namespace=ns, name="cacerts", action="delete")] if gone else [],
                         **facts)
    if p["root_check_only"]:
        declared = read(p["root_cert_path"]) if p["root_cert_path"] and os.path.exists(p["root_cert_path"]) else None
        facts.update(root_sha256=hashlib.sha256(declared).hexdigest() if declared else "",
                     root_fingerprint=ca.describe_roots(declared) if declared else "none (to be generated)",
                     root_matches=not current_root or (declared is not None and hashlib.sha256(declared).hexdigest() == current_root))
        module.exit_json(changed=False, action="none", restarted=[], objects=[], **facts)

    paths = [p["ca_cert_path"], p["ca_key_path"], p["root_cert_path"]] + ([p["cert_chain_path"]] if p["cert_chain_path"] else [])
    if module.check_mode and not all(os.path.exists(f) for f in paths):
        # The CA files are themselves only planned (check mode of a first run): the Secret would be written.
        module.exit_json(changed=True, action="patch" if current else "create", restarted=[],
                         objects=[dict(kind="Secret", namespace=ns, name="cacerts", action="patch" if current else "create")],
                         **facts)
    try:
        files = {"ca-cert.pem": read(p["ca_cert_path"]), "ca-key.pem": read(p["ca_key_path"]),
                 "root-cert.pem": read(p["root_cert_path"])}
        files["cert-chain.pem"] = read(p["cert_chain_path"]) if p["cert_chain_path"] else (
            files["ca-cert.pem"].rstrip(b"\n") + b"\n" + files["root-cert.pem"])
    except (IOError, OSError) as e:
        module.fail_json(msg="cannot read CA file: %s" % e)
    data = dict((name, base64.b64encode(files[name]).decode("ascii")) for name in FILES)
    module._module.no_log_values.add(data["ca-key.pem"])
    root = hashlib.sha256(files["root-cert.pem"]).hexdigest()
    facts.update(root_sha256=root, root_fingerprint=ca.describe_roots(files["root-cert.pem"]),
                 root_matches=not current_root or current_root == root)
    if not facts["root_matches"] and not p["replace_root"]:
        module.fail_json(msg="Secret %s/cacerts holds another root (%s) than this run's (%s). Replacing it breaks "
                             "cross-cluster mTLS with every cluster that keeps the old root. Run with the mesh's "
                             "original root (istio_ca_root_cert/istio_ca_root_key, or the istio_ca_dir it was "
                             "generated in), or set replace_root (istio_ca_replace_root) to replace it on purpose."
                             % (ns, current_fp, facts["root_fingerprint"]), **facts)
    desired = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "cacerts", "namespace": ns, "labels": dict(kube.MANAGED_BY)}, "data": data}
    result = k.ensure(desired, check_mode=module.check_mode)
    restarted = []
    if result["changed"] and p["restart_istiod"]:
        restarted = restart_istiods(k, ns, module.check_mode)
    objects = kube.written([kube.object_ref(desired, result["action"])])
    objects += [dict(kind="Deployment", namespace=ns, name=name, action="patch") for name in restarted]
    out = dict(changed=result["changed"], action=result["action"], restarted=restarted, objects=objects, **facts)
    if module._diff:
        out["diff"] = dict(before=result["before"] or {}, after=result["after"])
    module.exit_json(**out)


if __name__ == "__main__":
    main()
