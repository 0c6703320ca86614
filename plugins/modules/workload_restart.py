#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: workload_restart
short_description: Restart the workloads whose proxies are not on the revision their namespace's tag names
version_added: 0.2.0
description:
  - For every namespace labelled C(istio.io/rev=<tag>) with a tag of O(tags), finds the pods whose proxy another
    revision injected (the injector's C(istio.io/rev) annotation) and restarts the Deployments, StatefulSets and DaemonSets that own
    them, as C(kubectl rollout restart) does (the pod template's C(kubectl.kubernetes.io/restartedAt) annotation), so
    that their new pods are injected by the tag's revision. This is the step of Istio's canary upgrade after a tag
    moves.
  - Waits until every pod of those namespaces runs the tag's revision, up to O(timeout) seconds; the workloads' own
    rollout strategy decides how many pods are replaced at a time.
  - Workloads already on their tag's revision are not touched, so a second run restarts nothing.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  tags:
    description: Tag -> revision; the namespaces labelled with these tags are looked at.
    type: dict
    required: true
  timeout:
    description: Seconds to wait for the restarted pods to run the tag's revision.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Move the prod-canary namespaces' proxies to 1-30-3
  meshops.istio.workload_restart:
    context: cluster1
    tags:
      prod-canary: 1-30-3
"""

RETURN = r"""
objects:
  description: The workloads restarted (in check mode, that would be), action V(restart).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(Deployment), V(StatefulSet) or V(DaemonSet).
      type: str
    namespace:
      description: Its namespace.
      type: str
    name:
      description: Its name.
      type: str
    action:
      description: V(restart).
      type: str
namespaces:
  description: The namespaces looked at, namespace -> the revision its tag names.
  returned: success
  type: dict
"""

import datetime
import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube
from ansible_collections.meshops.istio.plugins.module_utils.revision_tags import REVISION_LABEL

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}


def owner_workload(pod, replica_sets):
    """(kind, name) of the workload that owns the pod, through its ReplicaSet for a Deployment; None for a bare pod."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref["kind"] in ("StatefulSet", "DaemonSet"):
            return ref["kind"], ref["name"]
        if ref["kind"] == "ReplicaSet":
            rs = replica_sets.get(ref["name"])
            for rs_ref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
                if rs_ref["kind"] == "Deployment":
                    return "Deployment", rs_ref["name"]
    return None


def stale_workloads(k, namespace, revision):
    """(kind, name) of the workloads of the namespace with a pod (not being deleted) whose proxy another revision
    injected; pods no workload owns cannot be restarted and are left out."""
    pods = [p for p in k.list("v1", "Pod", namespace=namespace) if not p["metadata"].get("deletionTimestamp")
            and REVISION_LABEL in (p["metadata"].get("annotations") or {})
            and p["metadata"]["annotations"][REVISION_LABEL] != revision]
    if not pods:
        return []
    replica_sets = dict((rs["metadata"]["name"], rs) for rs in k.list("apps/v1", "ReplicaSet", namespace=namespace))
    return sorted(set(o for o in (owner_workload(pod, replica_sets) for pod in pods) if o))


def main():
    spec = kube.auth_argument_spec()
    spec.update(tags=dict(type="dict", required=True), timeout=dict(type="int", default=300))
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    tags = dict((str(t), str(r)) for t, r in p["tags"].items())
    refs = []
    try:
        k = kube.Kube(**kube.auth_from_params(p))
        namespaces = {}
        if tags:
            selector = "%s in (%s)" % (REVISION_LABEL, ",".join(sorted(tags)))
            for ns in k.list("v1", "Namespace", label_selector=selector):
                namespaces[ns["metadata"]["name"]] = tags[ns["metadata"]["labels"][REVISION_LABEL]]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for ns, revision in sorted(namespaces.items()):
            for kind, name in stale_workloads(k, ns, revision):
                if not module.check_mode:
                    k.resource(KINDS[kind], kind).patch(
                        name=name, namespace=ns, content_type="application/merge-patch+json",
                        body={"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
                refs.append(dict(kind=kind, namespace=ns, name=name, action="restart"))
        if refs and not module.check_mode:
            deadline = time.monotonic() + p["timeout"]
            while True:
                left = ["%s %s/%s" % (kind, ns, name) for ns, rev in sorted(namespaces.items())
                        for kind, name in stale_workloads(k, ns, rev)]
                if not left:
                    break
                if time.monotonic() > deadline:
                    module.fail_json(msg="after %ss, these workloads still have pods of another revision: %s"
                                     % (p["timeout"], ", ".join(left)), objects=refs)
                time.sleep(2)
    except Exception as e:  # unreachable, refused: said with what was already restarted
        module.fail_json(msg="restarting workloads: %s" % e, objects=refs)
    out = dict(changed=bool(refs), objects=refs, namespaces=namespaces)
    if module._diff:
        out["diff"] = {"before": {}, "after": dict(("%s %s/%s" % (r["kind"], r["namespace"], r["name"]), "restart") for r in refs)}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
