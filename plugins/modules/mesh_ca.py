#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mesh_ca
short_description: The mesh's root CA and a cluster's intermediate CA, as files on the controller
version_added: 0.1.0
description:
  - With O(part=root), ensures the mesh root (C(root-key.pem), C(root-cert.pem)) in O(directory), unless a root of
    your own is given with O(root_cert_path) and O(root_key_path). Run it once per mesh (C(run_once)).
  - With O(part=intermediate), ensures the root as O(part=root) does (under a lock on O(directory), so that the runs
    for several clusters at once make one root), then O(cluster_id)'s intermediate CA in C(<directory>/<cluster_id>/) with
    C(ca-key.pem), C(ca-cert.pem), C(root-cert.pem) and C(cert-chain.pem), signed by the root. The layout and
    certificate profile follow Istio's C(tools/certs) (O=Istio, CN=Intermediate CA, L=<cluster>, C(pathlen:0),
    SAN C(istiod.<namespace>.svc)).
  - Existing files are reused. An intermediate is re-issued only when it is not signed by the root, does not match
    its key, names another cluster or namespace, or expires within 30 days.
  - In check mode nothing is written; the result says what would be created. Private keys are never returned.
author:
  - meshops.istio maintainers (@meshops)
options:
  directory:
    description: Directory on the controller that holds the mesh's CA files. Keep it; a new root would not match the
      clusters' existing C(cacerts).
    type: path
    required: true
  part:
    description: Which part to ensure.
    type: str
    choices: [root, intermediate]
    required: true
  cluster_id:
    description: The cluster whose intermediate to ensure (required with O(part=intermediate)).
    type: str
  namespace:
    description: The Istio system namespace (written into the intermediate's SAN).
    type: str
    default: istio-system
  root_cert_path:
    description: A root certificate of your own (PEM). Used with O(root_key_path) instead of a generated root.
    type: path
  root_key_path:
    description: The key of O(root_cert_path) (PEM, unencrypted).
    type: path
  key_size:
    description: RSA key size of generated keys.
    type: int
    default: 4096
  days:
    description: Validity of generated certificates, in days.
    type: int
    default: 3650
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
"""

EXAMPLES = r"""
- name: The mesh root alone, once
  meshops.istio.mesh_ca:
    directory: ~/.meshops/mesh1/ca
    part: root
  run_once: true

- name: One intermediate per cluster (and the root, when there is none yet)
  meshops.istio.mesh_ca:
    directory: ~/.meshops/mesh1/ca
    part: intermediate
    cluster_id: "{{ istio_cluster_id }}"
"""

RETURN = r"""
root_cert_path:
  description: The root certificate file.
  returned: always
  type: str
root_key_path:
  description: The root key file.
  returned: always
  type: str
root_sha256:
  description: SHA-256 of the root certificate PEM (empty in check mode when the root is yet to be created).
  returned: always
  type: str
root_fingerprint:
  description: SHA-256 fingerprint and subject of the root certificate, or V(none (to be generated)).
  returned: always
  type: str
ca_cert_path:
  description: The intermediate certificate file.
  returned: with O(part=intermediate)
  type: str
ca_key_path:
  description: The intermediate key file.
  returned: with O(part=intermediate)
  type: str
cert_chain_path:
  description: The intermediate followed by the root.
  returned: with O(part=intermediate)
  type: str
cacerts_sha256:
  description:
    - With O(part=intermediate), the digest of the four files a C(cacerts) Secret gets (as
      M(meshops.istio.cluster_info) computes it for the Secret); empty in check mode when they would be written.
  returned: with O(part=intermediate)
  type: str
reason:
  description: Why files were (or would be) written.
  returned: when changed
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.meshops.istio.plugins.module_utils import ca


TO_BE_GENERATED = "none (to be generated)"


def describe_root(out, root):
    # root_sha256 hashes the PEM as written to each cluster's cacerts (root-cert.pem): it compares with what is there.
    out.update(root_sha256=ca.fingerprint(root), root_fingerprint=ca.describe_roots(ca.cert_pem(root)))


def root_paths(p):
    if p["root_cert_path"]:
        return p["root_cert_path"], p["root_key_path"]
    return os.path.join(p["directory"], "root-cert.pem"), os.path.join(p["directory"], "root-key.pem")


def ensure_root(module, p, out):
    cert_path, key_path = root_paths(p)
    out.update(root_cert_path=cert_path, root_key_path=key_path, root_sha256="", root_fingerprint=TO_BE_GENERATED)
    if os.path.exists(cert_path) and os.path.exists(key_path):
        describe_root(out, ca.load_cert(cert_path))
        return
    if p["root_cert_path"]:
        module.fail_json(msg="root_cert_path %s or root_key_path %s does not exist" % (cert_path, key_path))
    out.update(changed=True, reason="no root in %s" % p["directory"])
    if module.check_mode:
        return
    key = ca.new_key(p["key_size"])
    cert = ca.make_root(key, p["days"])
    ca.write_private(key_path, ca.key_pem(key))
    ca.write_public(cert_path, ca.cert_pem(cert))
    describe_root(out, cert)


def ensure_intermediate(module, p, out):
    cert_path, key_path = root_paths(p)
    d = os.path.join(p["directory"], p["cluster_id"])
    files = dict(ca_cert_path=os.path.join(d, "ca-cert.pem"), ca_key_path=os.path.join(d, "ca-key.pem"),
                 cert_chain_path=os.path.join(d, "cert-chain.pem"))
    out.update(files, root_cert_path=os.path.join(d, "root-cert.pem"), root_key_path=key_path, root_sha256="",
               root_fingerprint=TO_BE_GENERATED, cacerts_sha256="")
    if not (os.path.exists(cert_path) and os.path.exists(key_path)):
        if module.check_mode:  # the root itself is only planned
            out.update(changed=True, reason="the root is yet to be created")
            return
        module.fail_json(msg="no mesh root at %s: run this module with part=root first" % cert_path)
    root, root_key = ca.load_cert(cert_path), ca.load_key(key_path)
    describe_root(out, root)
    reason, reuse_key = None, os.path.exists(files["ca_key_path"])
    if not all(os.path.exists(f) for f in list(files.values()) + [out["root_cert_path"]]):
        reason = "no intermediate for %s yet" % p["cluster_id"]
    else:
        problem = ca.intermediate_problem(ca.load_cert(files["ca_cert_path"]), ca.load_key(files["ca_key_path"]), root,
                                          p["cluster_id"], p["namespace"])
        if problem:
            reason = "the intermediate for %s %s" % (p["cluster_id"], problem)
            reuse_key = problem != "does not match its key"
        elif open(out["root_cert_path"], "rb").read() != ca.cert_pem(root) or open(files["cert_chain_path"], "rb").read() != (
                open(files["ca_cert_path"], "rb").read() + ca.cert_pem(root)):
            reason = "the copy of the root or the chain for %s is out of date" % p["cluster_id"]
    if reason is None:
        describe_files(out)
        return
    out.update(changed=True, reason=reason)
    if module.check_mode:
        return
    if not os.path.isdir(d):
        os.makedirs(d, 0o700)
    key = ca.load_key(files["ca_key_path"]) if reuse_key else None
    if key is None or key.key_size != p["key_size"]:
        key = ca.new_key(p["key_size"])
        ca.write_private(files["ca_key_path"], ca.key_pem(key))
    cert = ca.make_intermediate(key, root, root_key, p["cluster_id"], p["namespace"], p["days"])
    ca.write_public(files["ca_cert_path"], ca.cert_pem(cert))
    ca.write_public(out["root_cert_path"], ca.cert_pem(root))
    ca.write_public(files["cert_chain_path"], ca.cert_pem(cert) + ca.cert_pem(root))
    describe_files(out)


def describe_files(out):
    paths = dict(zip(ca.CACERTS_FILES, (out["ca_cert_path"], out["ca_key_path"], out["root_cert_path"],
                                        out["cert_chain_path"])))
    out["cacerts_sha256"] = ca.cacerts_digest(dict((name, open(path, "rb").read()) for name, path in paths.items()))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directory=dict(type="path", required=True),
            part=dict(type="str", choices=["root", "intermediate"], required=True),
            cluster_id=dict(type="str"),
            namespace=dict(type="str", default="istio-system"),
            root_cert_path=dict(type="path"),
            root_key_path=dict(type="path", no_log=False),
            key_size=dict(type="int", default=4096, no_log=False),
            days=dict(type="int", default=3650),
        ),
        required_if=[("part", "intermediate", ("cluster_id",))],
        required_together=[("root_cert_path", "root_key_path")],
        supports_check_mode=True,
    )
    if not ca.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    p = module.params
    out = dict(changed=False)
    if not module.check_mode and not os.path.isdir(p["directory"]):
        try:
            os.makedirs(p["directory"], 0o700)
        except OSError:  # the run for another cluster made it meanwhile
            if not os.path.isdir(p["directory"]):
                raise
    if p["part"] == "root":
        ensure_root(module, p, out)
    else:
        # One task per cluster instead of a root task first: one module run less on every converge.
        root = dict(changed=False)
        with ca.directory_lock(p["directory"], module.check_mode):
            ensure_root(module, p, root)
        ensure_intermediate(module, p, out)
        if root["changed"]:
            out.update(changed=True, reason="%s; %s" % (root["reason"], out.get("reason") or "new intermediate"))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
