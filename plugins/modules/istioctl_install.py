#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: istioctl_install
short_description: Install an Istio control plane with istioctl, only when its IstioOperator changed
version_added: 0.1.0
description:
  - Renders an C(install.istio.io/v1alpha1) IstioOperator from O(iop) and O(helm_values) and runs
    C(istioctl install) with it, which waits until the control plane is ready.
  - C(istioctl install) re-applies every object, so it runs only when needed. The fingerprint (SHA-256) of the
    IstioOperator and of the istioctl version is kept, with the IstioOperator itself, in the ConfigMap
    C(meshops-istio-install[-<revision>]) in O(namespace). When that fingerprint matches and the control plane
    exists (the istiod Deployment, or with the C(remote) profile the injection webhook), nothing is written.
  - Objects changed behind istioctl's back are not detected; change the IstioOperator or delete the ConfigMap to
    force a new C(istioctl install).
  - In check mode nothing is written and istioctl is not run against the cluster; the diff shows the installed and
    the wanted IstioOperator.
  - istioctl connects with O(kubeconfig) and O(context) (and the impersonation options) only; other connection
    options are refused.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  iop:
    description:
      - The IstioOperator (C(apiVersion) and C(kind) may be left out), for example C(spec.profile) and
        C(spec.components). Its C(spec.values) win over O(helm_values).
    type: dict
    default: {}
  helm_values:
    description:
      - Helm values per chart (C(base), C(istiod), C(cni), C(ztunnel)), as the Helm install method takes them.
        They become IstioOperator C(spec.values); for example the istiod chart's C(env) becomes C(pilot.env). A
        null value leaves the field out.
    type: dict
    default: {}
  namespace:
    description: The Istio system namespace (sets C(values.global.istioNamespace)). It must exist.
    type: str
    default: istio-system
  revision:
    description: The control plane revision (C(spec.revision)); unset for the default revision.
    type: str
  istioctl_binary:
    description: The istioctl to run, a path or a name looked up in E(PATH). Its version is part of the fingerprint.
    type: path
    default: istioctl
  timeout:
    description: How long istioctl waits for the control plane to be ready (C(--readiness-timeout)), e.g. C(5m0s).
    type: str
  wait_timeout:
    description:
      - With O(state=absent), seconds to wait until the object that proves the install is gone (istiod's Deployment;
        on a remote profile, its injection webhook). istioctl deletes with foreground propagation, so the Deployment
        stays while its pods go; the Helm method waits the same way (C(helm uninstall --wait)).
    type: int
    default: 180
  state:
    description:
      - V(absent) runs C(istioctl uninstall --revision <revision or default>) and deletes the ConfigMap; custom
        resource definitions and other shared objects stay.
      - When the control plane is gone already (removed by hand) and istioctl finds no such revision, only the
        ConfigMap is deleted.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Install istiod for cluster1 of a multi-network mesh
  meshops.istio.istioctl_install:
    context: cluster1
    iop:
      spec:
        profile: default
        components:
          ingressGateways:
            - name: istio-ingressgateway
              enabled: false
    helm_values:
      istiod:
        global:
          meshID: mesh1
          multiCluster:
            clusterName: cluster1
          network: network1
"""

RETURN = r"""
fingerprint:
  description: SHA-256 of the IstioOperator and the istioctl version.
  returned: always
  type: str
istioctl_version:
  description: The istioctl client version.
  returned: always
  type: str
iop:
  description: The rendered IstioOperator.
  returned: when O(state=present)
  type: dict
action:
  description: V(install), V(uninstall) or V(none) (what was done, or would be in check mode).
  returned: always
  type: str
command:
  description: The istioctl command line run (or that would run); empty when nothing was needed.
  returned: always
  type: str
objects:
  description:
    - What the run wrote (in check mode, would write), as the changes report lists it. The istioctl install or
      uninstall is one entry of kind C(IstioOperator) named after the revision (C(default) without one), action
      V(install), V(upgrade) or V(uninstall), as Helm releases are one C(HelmRelease) entry each (istioctl applies every
      object of its manifest); then the install record ConfigMap (V(create), V(patch) or V(delete)). Empty when
      nothing changed.
  returned: always
  type: list
  elements: dict
  sample: [{kind: IstioOperator, namespace: istio-system, name: default, action: install},
           {kind: ConfigMap, namespace: istio-system, name: meshops-istio-install, action: create}]
already_gone:
  description: With O(state=absent), true when istioctl found no such revision because the control plane had been
    removed already; only the ConfigMap was deleted.
  returned: when O(state=absent)
  type: bool
"""

import json
import os
import shlex
import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import istioctl, kube

# Options of kubernetes.core's client that istioctl has no flag for.
UNSUPPORTED_AUTH = ("host", "api_key", "username", "password", "client_cert", "client_key", "ca_cert", "validate_certs",
                    "proxy", "no_proxy", "proxy_headers")


def quote(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def run(module, cmd, what):
    rc, out, err = module._module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg="%s failed (rc %s): %s" % (what, rc, (err or out)[-3000:]), command=quote(cmd),
                         stdout=out[-6000:], stderr=err[-3000:])
    return out


def connection(module, p):
    bad = [k for k in UNSUPPORTED_AUTH if p.get(k) is not None]
    if bad:
        module.fail_json(msg="istioctl connects through a kubeconfig only; put %s in a kubeconfig context" % ", ".join(bad))
    kubeconfig = p["kubeconfig"] or os.environ.get("K8S_AUTH_KUBECONFIG")
    if isinstance(kubeconfig, dict):
        path = os.path.join(module._module.tmpdir, "kubeconfig")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump(kubeconfig, f)
        kubeconfig = path
    return istioctl.connection_args(kubeconfig, p["context"] or os.environ.get("K8S_AUTH_CONTEXT"),
                                    p["impersonate_user"], p["impersonate_groups"])


def written(namespace, revision, action):
    """The changes report's entry for what istioctl applied or removed (one per revision, like a Helm release)."""
    return dict(kind="IstioOperator", namespace=namespace, name=revision or "default", action=action)


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        iop=dict(type="dict", default={}),
        helm_values=dict(type="dict", default={}),
        namespace=dict(type="str", default="istio-system"),
        revision=dict(type="str"),
        istioctl_binary=dict(type="path", default="istioctl"),
        timeout=dict(type="str"),
        wait_timeout=dict(type="int", default=180),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    ns, revision = p["namespace"], p["revision"] or None
    binary = p["istioctl_binary"]
    if os.sep not in binary:
        binary = module._module.get_bin_path(binary, required=True)
    conn = connection(module, p)
    version_output = run(module, [binary, "version", "--remote=false", "-o", "json"], "istioctl version")
    try:
        version = istioctl.parse_version(version_output)
        iop = istioctl.render(p["iop"], ns, revision, p["helm_values"])
        k = kube.Kube(**kube.auth_from_params(p))
        state = k.get("v1", "ConfigMap", istioctl.state_name(revision), ns)
        old_fp, old_iop, old_version = istioctl.stored(state)
        # Uninstalling: what was installed says which object proves it (remote profile or not).
        api_version, kind, name, obj_ns = istioctl.control_plane_object(
            old_iop or iop if p["state"] == "absent" else iop, ns, revision)
        installed = k.get(api_version, kind, name, obj_ns) is not None
    except istioctl.IstioctlError as e:
        module.fail_json(msg=str(e))
    except Exception as e:
        module.fail_json(msg="reading the control plane in namespace %s: %s" % (ns, e))
    before = dict(installed=installed, istioctl_version=old_version, iop=old_iop)

    if p["state"] == "absent":
        changed = installed or state is not None
        cmd = istioctl.uninstall_command(binary, ns, revision, conn) if changed else []
        gone = False
        if changed and not module.check_mode:
            rc, stdout, stderr = module._module.run_command(cmd)
            # istioctl refuses a revision it cannot find; with our control-plane object gone too, there is
            # nothing left to uninstall but the record of the install.
            gone = rc != 0 and not installed and istioctl.REVISION_NOT_FOUND in stderr + stdout
            if rc != 0 and not gone:
                module.fail_json(msg="istioctl uninstall failed (rc %s): %s" % (rc, (stderr or stdout)[-3000:]),
                                 command=quote(cmd), stdout=stdout[-6000:], stderr=stderr[-3000:])
            deadline = time.time() + p["wait_timeout"]
            while installed and k.get(api_version, kind, name, obj_ns) is not None:
                if time.time() > deadline:
                    module.fail_json(msg="istioctl uninstall ran, but %s %s/%s was still there after %ss"
                                         % (kind, obj_ns, name, p["wait_timeout"]), command=quote(cmd))
                time.sleep(1)
            k.delete("v1", "ConfigMap", istioctl.state_name(revision), ns)
        objects = []
        if changed:
            objects = ([written(ns, revision, "uninstall")] if installed else []) + \
                      ([dict(kind="ConfigMap", namespace=ns, name=istioctl.state_name(revision), action="delete")] if state is not None else [])
        out = dict(changed=changed, action="uninstall" if changed else "none", command=quote(cmd),
                   fingerprint=old_fp or "", istioctl_version=version, already_gone=gone, objects=objects)
        if module._diff:
            out["diff"] = dict(before=before, after=dict(installed=False, istioctl_version=None, iop=None))
        module.exit_json(**out)

    fp = istioctl.fingerprint(iop, version)
    changed = not (installed and old_fp == fp)
    cmd = []
    if changed:
        iop_path = os.path.join(module._module.tmpdir, "iop.json")
        cmd = istioctl.install_command(binary, iop_path, conn, p["timeout"])
        if not module.check_mode:
            with open(iop_path, "w") as f:
                json.dump(iop, f)
            run(module, cmd, "istioctl install")
            try:
                k.ensure(istioctl.state_configmap(ns, revision, iop, version))
            except Exception as e:
                module.fail_json(msg="istioctl install succeeded but recording it in ConfigMap %s/%s failed: %s"
                                     % (ns, istioctl.state_name(revision), e))
    objects = []
    if changed:
        # The record holds the fingerprint (and what it is made of): equal fingerprints, equal record.
        record = "create" if state is None else "patch" if old_fp != fp else None
        objects = [written(ns, revision, "upgrade" if installed else "install")] + \
            ([dict(kind="ConfigMap", namespace=ns, name=istioctl.state_name(revision), action=record)] if record else [])
    out = dict(changed=changed, action="install" if changed else "none", command=quote(cmd), fingerprint=fp,
               istioctl_version=version, iop=iop, objects=objects)
    if module._diff:
        out["diff"] = dict(before=before, after=dict(installed=True, istioctl_version=version, iop=iop))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
