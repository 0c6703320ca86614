#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gateway_api_crds
short_description: Install the Kubernetes Gateway API CRDs an Istio release is built against
version_added: 0.1.0
description:
  - Reads the Gateway API manifests from O(src) (a directory of YAML files, one YAML file, or an http(s) URL such as a
    Gateway API release's C(standard-install.yaml)) and makes the cluster hold them. CRDs go first, then the other
    objects of the bundle (the C(safe-upgrades) ValidatingAdmissionPolicy of Gateway API 1.5 and later).
  - An object that already holds what the manifest says gets no write request (fields the API server adds, also inside
    list items, do not count as a difference). A difference is written with a merge patch, a missing object is created.
    Created or changed CRDs are waited for until they are C(Established).
  - With O(keep_newer), an object (a CRD, the admission policy) the cluster already holds in a newer bundle version, or
    in the experimental channel where the manifest is standard, is left alone and reported.
  - Ambient mode needs these CRDs before istiod starts (istiod then serves the C(istio-east-west) GatewayClass). A
    kustomize source (Istio's docs use C(kubectl kustomize "github.com/kubernetes-sigs/gateway-api/config/crd?ref=<version>"))
    is not built here; render it to a file first, or point O(src) at the release's C(standard-install.yaml).
  - In check mode nothing is written and nothing is waited for.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  src:
    description:
      - Where the manifests are, on the controller. A directory (its C(.yaml), C(.yml) and C(.json) files, not
        recursive, in name order), a file, or an http(s) URL. C(~) is expanded.
      - "Multi-document YAML and C(kind: List) are accepted; a C(Kustomization) is refused with a hint."
    type: str
    required: true
  version:
    description:
      - The Gateway API version the CRDs must be (for example the one the Istio release pins in its C(go.mod)). When
        set, the run fails before any write if a Gateway API CRD in O(src) carries another
        C(gateway.networking.k8s.io/bundle-version).
    type: str
  keep_newer:
    description:
      - Leave an object alone when the cluster holds a newer bundle version of it, or the experimental channel where the
        manifest is standard.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for created or changed CRDs to be C(Established).
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: The Gateway API CRDs Istio 1.30 is built against, from the release
  meshops.istio.gateway_api_crds:
    context: cluster1
    src: https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml
    version: v1.5.1

- name: The same from a local directory (for example config/crd/standard of the gateway-api module)
  meshops.istio.gateway_api_crds:
    context: cluster1
    src: /opt/gateway-api-1.5.1/config/crd/standard
"""

RETURN = r"""
objects:
  description: Every object of the manifests and what was done to it.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Object kind.
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create), V(patch), V(none) or V(keep) (left alone, see O(keep_newer)).
      type: str
    reason:
      description: Why a V(keep) object was left alone.
      type: str
      returned: when action is keep
bundle_versions:
  description: The Gateway API bundle versions the manifests carry.
  returned: always
  type: list
  elements: str
  sample: [v1.5.1]
sources:
  description: The files or URL the manifests were read from.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import gateway_api, kube


def read_manifests(src):
    """(objects, sources) from a directory, a file or an http(s) URL."""
    if src.lower().startswith(("http://", "https://")):
        try:
            text = to_text(open_url(src, timeout=60).read())
        except Exception as e:
            raise gateway_api.ManifestError("cannot fetch %s: %s" % (src, e))
        return gateway_api.load_documents(text, src), [src]
    objects, sources = [], gateway_api.source_files(src)
    for path in sources:
        with open(path, "rb") as f:
            objects.extend(gateway_api.load_documents(to_text(f.read()), path))
    return objects, sources


def wait_established(k, names, timeout):
    """Names of CRDs that are not Established after timeout seconds."""
    deadline = time.time() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if (gateway_api.condition(k.get("apiextensions.k8s.io/v1", gateway_api.CRD_KIND, n), "Established")
                                          or {}).get("status") != "True"]
        if not pending or time.time() >= deadline:
            break
        time.sleep(0.5)
    return pending


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        src=dict(type="str", required=True),
        version=dict(type="str"),
        keep_newer=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=60),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        objects, sources = read_manifests(p["src"])
        desired = gateway_api.ordered([gateway_api.desired_object(o) for o in objects])
    except gateway_api.ManifestError as e:
        module.fail_json(msg=str(e))
    if not any(o["kind"] == gateway_api.CRD_KIND for o in desired):
        module.fail_json(msg="%s holds no CustomResourceDefinition" % p["src"], sources=sources)
    versions = sorted(set(gateway_api.bundle(o)[0] for o in desired if o["kind"] == gateway_api.CRD_KIND and gateway_api.bundle(o)[0]))
    if p["version"]:
        if gateway_api.parse_version(p["version"]) is None:
            module.fail_json(msg="version %r is not a Gateway API version (vX.Y.Z)" % p["version"])
        wrong = gateway_api.check_version(desired, p["version"])
        if wrong:
            module.fail_json(msg="the CRDs in %s are not Gateway API %s, nothing was changed: %s; point the source at the %s CRDs, or set the "
                                 "expected version to the one you mean" % (p["src"], p["version"], "; ".join(wrong), p["version"]),
                             bundle_versions=versions, sources=sources)

    k = kube.Kube(**kube.auth_from_params(p))
    results = []
    for obj in desired:
        entry = dict(kind=obj["kind"], name=obj["metadata"]["name"])
        try:
            current = k.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
            reason = gateway_api.keep_reason(current, obj) if p["keep_newer"] else None
            if reason:
                entry.update(action="keep", reason=reason, changed=False)
            else:
                r = k.ensure(obj, check_mode=module.check_mode, item_subset=True)
                entry.update(action=r["action"], changed=r["changed"], before=gateway_api.summary(current),
                             after=gateway_api.summary(r["object"]))
        except kube.KubeError as e:
            module.fail_json(msg="%s: %s" % (gateway_api.key(obj), e),
                             objects=[dict(kind=done["kind"], name=done["name"], action=done["action"]) for done in results])
        except Exception as e:
            module.fail_json(msg="%s: %s" % (gateway_api.key(obj), e))
        results.append(entry)

    changed_crds = [r["name"] for r in results if r["changed"] and r["kind"] == gateway_api.CRD_KIND]
    if changed_crds and not module.check_mode:
        pending = wait_established(k, changed_crds, p["wait_timeout"])
        if pending:
            module.fail_json(msg="CRDs not Established after %ss: %s" % (p["wait_timeout"], ", ".join(pending)))

    out = dict(changed=any(r["changed"] for r in results), bundle_versions=versions, sources=sources,
               objects=[dict((x, r[x]) for x in ("kind", "name", "action", "reason") if x in r) for r in results])
    if module._diff:
        changed = [r for r in results if r["changed"]]
        out["diff"] = dict(before=dict(("%s/%s" % (r["kind"], r["name"]), r["before"]) for r in changed),
                           after=dict(("%s/%s" % (r["kind"], r["name"]), r["after"]) for r in changed))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
