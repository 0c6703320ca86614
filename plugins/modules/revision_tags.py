#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: revision_tags
short_description: Make a cluster's Istio revision tags point where they are declared
version_added: 0.1.0
description:
  - For every tag of O(tags), ensures the objects C(istioctl tag set <tag> --revision <rev>) and the istiod chart's
    C(revisionTags) make, from the same templates - the MutatingWebhookConfiguration C(istio-revision-tag-<tag>),
    whose webhooks send pods of namespaces labelled C(istio.io/rev=<tag>) (or pods labelled so) to the revision's
    injector, and the Service C(istiod-revision-tag-<tag>) that selects the revision's istiod.
  - As istioctl does, the webhooks' client config is the revision's own injection webhook's
    (C(istio-sidecar-injector-<rev>)), so on a remote cluster a tag calls the primary's istiod as its revision does.
    The revision must have that webhook in the cluster.
  - The tag V(default) also takes C(istio-injection=enabled) namespaces and pods labelled
    C(sidecar.istio.io/inject=true), as Istio's default tag does; it cannot sit beside an unrevisioned control plane,
    which already takes them (the preflight refuses that).
  - Tags this collection made that O(tags) no longer names are removed; tags made by someone else are left alone
    unless O(tags) names them or O(remove_revisions) their revision, and are returned in RV(unmanaged).
  - Moving a tag is one patch per object; pods keep their proxies until they restart.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  namespace:
    description: The Istio system namespace (where the revisions' istiod Services are).
    type: str
    default: istio-system
  tags:
    description: Tag name -> revision (V(default) for the unrevisioned control plane). An empty mapping removes every
      tag this collection made.
    type: dict
    required: true
  prune:
    description: Remove the tags this collection made that O(tags) does not name. Off, only O(remove_revisions) removes.
    type: bool
    default: true
  remove_revisions:
    description:
      - Also remove every tag that points at one of these revisions, whoever made it, unless O(tags) names it (an
        uninstall of those revisions; their webhooks would otherwise refuse every pod of the tags' namespaces).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: prod-stable on 1-29-6, prod-canary on 1-30-3
  meshops.istio.revision_tags:
    context: cluster1
    tags:
      prod-stable: 1-29-6
      prod-canary: 1-30-3
"""

RETURN = r"""
tags:
  description: Every revision tag of the cluster after the run (in check mode, as it would be), tag -> revision.
  returned: success
  type: dict
  sample: {prod-stable: 1-29-6, prod-canary: 1-30-3}
unmanaged:
  description: Tags found in the cluster that this collection did not make and O(tags) does not name (left alone).
  returned: success
  type: list
  elements: str
objects:
  description: The objects written or deleted (in check mode, that would be); empty when nothing differs.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Object kind.
      type: str
    namespace:
      description: Object namespace (empty when cluster-scoped).
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create), V(patch) or V(delete).
      type: str
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube
from ansible_collections.meshops.istio.plugins.module_utils import revision_tags as rt

MWC = ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")


def main():
    spec = kube.auth_argument_spec()
    spec.update(namespace=dict(type="str", default="istio-system"), tags=dict(type="dict", required=True),
                remove_revisions=dict(type="list", elements="str", default=[]), prune=dict(type="bool", default=True))
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    wanted = dict((str(k), str(v)) for k, v in p["tags"].items())
    refs, results = [], []
    try:
        k = kube.Kube(**kube.auth_from_params(p))
        webhooks = k.list(*MWC, label_selector=rt.REVISION_LABEL)
        found, ours = rt.live_tags(webhooks)
        for tag, revision in sorted(wanted.items()):
            canonical = rt.canonical_webhook(webhooks, revision, p["namespace"])
            if canonical is None:
                module.fail_json(msg="tag %s: revision %s has no injection webhook in this cluster (istio-sidecar-injector%s); "
                                 "install the revision first" % (tag, revision, "" if revision == "default" else "-" + revision),
                                 objects=kube.written(refs))
            for desired in (rt.tag_webhook(tag, revision, canonical, p["namespace"], kube.MANAGED_BY),
                            rt.tag_service(tag, revision, p["namespace"], kube.MANAGED_BY)):
                result = k.ensure(desired, check_mode=module.check_mode, item_subset=True)
                result["key"] = "%s %s" % (desired["kind"], desired["metadata"]["name"])
                results.append(result)
                refs.append(kube.object_ref(desired, result["action"]))
        removed = set(t for t, r in found.items() if r in p["remove_revisions"]) | (ours if p["prune"] else set())
        for tag in sorted(removed - set(wanted)):
            for api_version, kind, name, ns in (MWC + (rt.webhook_name(tag, p["namespace"]), None),
                                                ("v1", "Service", rt.service_name(tag), p["namespace"])):
                if k.delete(api_version, kind, name, ns, check_mode=module.check_mode):
                    refs.append(dict(kind=kind, namespace=ns or "", name=name, action="delete"))
                    results.append(dict(changed=True, key="%s %s" % (kind, name), before={"revision": found[tag]}, after={}))
    except Exception as e:  # unreachable, refused by the API server: said with what was already written
        module.fail_json(msg="revision tags: %s" % e, objects=kube.written(refs))
    after = dict((t, r) for t, r in found.items() if t not in removed or t in wanted)
    after.update(wanted)
    written = kube.written(refs)
    out = dict(changed=bool(written), objects=written, tags=after, unmanaged=sorted(set(found) - ours - removed - set(wanted)))
    if module._diff:
        out["diff"] = kube.diff_of(results)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
