#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mesh_cleanup
short_description: Remove what uninstalling Istio's charts leaves behind in a cluster
version_added: 0.2.0
description:
  - The uninstall role's helper for what no Helm release, istioctl uninstall or other module of this collection
    removes. Each part is off unless asked for, and runs in this order.
  - O(objects) are deleted when present (a kind the cluster does not serve counts as absent), then waited for.
  - O(istiod_leftovers) deletes what istiod itself writes, once no istiod Deployment is left in the cluster and its
    pods are gone (a running istiod would write them again). That is the C(istio-ca-root-cert) and C(istio-ca-crl)
    ConfigMaps (label C(istio.io/config=true)) in every namespace, istiod's leader-election ConfigMaps in
    O(namespace), and the GatewayClasses of Istio's controllers (C(spec.controllerName) C(istio.io/...)).
  - O(delete_namespace) deletes O(namespace) and waits until it is gone, but only when everything left in it is
    Istio's (named C(istio*), labelled with an C(*istio.io/*) key, C(app.kubernetes.io/part-of=istio) or
    C(app.kubernetes.io/managed-by=meshops.istio), or a Helm release record of an Istio chart) or Kubernetes' own
    (C(kube-root-ca.crt), the C(default) ServiceAccount, Events). Otherwise the namespace stays, loses the
    C(topology.istio.io/network) label and the C(topology.istio.io/controlPlaneClusters) annotation, and
    RV(kept_by) lists what kept it.
  - O(crd_groups) deletes the CustomResourceDefinitions of those API groups (and their subdomains), with every
    custom resource of them, and waits until they and their APIService registrations are gone.
  - Objects already gone get no request other than the read. In check mode nothing is written and RV(removed)
    lists what would be; the istiod Deployments in O(namespace) then count as removed, as the uninstall would
    remove them.
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
  objects:
    description: Objects to delete when present.
    type: list
    elements: dict
    default: []
    suboptions:
      api_version:
        description: API version, for example C(gateway.networking.k8s.io/v1).
        type: str
        required: true
      kind:
        description: Kind.
        type: str
        required: true
      name:
        description: Name.
        type: str
        required: true
      namespace:
        description: Namespace of a namespaced object.
        type: str
  istiod_leftovers:
    description: Delete the objects istiod writes, when no istiod is left in the cluster.
    type: bool
    default: false
  delete_namespace:
    description: Delete O(namespace) when nothing but Istio's and Kubernetes' own objects is left in it.
    type: bool
    default: false
  crd_groups:
    description: Delete the CustomResourceDefinitions of these API groups and of their subdomains (V(istio.io) covers
      C(networking.istio.io), C(security.istio.io), ...).
    type: list
    elements: str
    default: []
  wait_timeout:
    description: Seconds to wait for istiod's pods, and for deleted objects, to be gone.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Remove istiod's leftovers, the namespace if nothing else lives there, and Istio's CRDs
  meshops.istio.mesh_cleanup:
    context: cluster1
    istiod_leftovers: true
    delete_namespace: true
    crd_groups: [istio.io]
"""

RETURN = r"""
removed:
  description: What was (or, in check mode, would be) deleted, as C(Kind[.group] namespace/name) (C(-) for cluster-scoped).
  returned: always
  type: list
  elements: str
  sample: [ConfigMap default/istio-ca-root-cert, Namespace -/istio-system]
kept_by:
  description: The objects that keep O(namespace) from being deleted (not Istio's).
  returned: always
  type: list
  elements: str
skipped:
  description: Why O(istiod_leftovers) were left alone (an istiod is still there), or empty.
  returned: always
  type: str
"""

import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube

try:
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
    from kubernetes.dynamic.resource import ResourceList
except ImportError:
    # Reported by AnsibleK8SModule's requires("kubernetes") before anything here runs.
    NotFoundError = ResourceNotFoundError = Exception
    ResourceList = type(None)

NETWORK_LABEL = "topology.istio.io/network"
CONTROL_PLANE_ANNOTATION = "topology.istio.io/controlPlaneClusters"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
ISTIOD_CONFIGMAPS = ("istio-ca-root-cert", "istio-ca-crl")
# Helm releases of Istio's charts (their release records are Secrets sh.helm.release.v1.<release>.v<n>).
ISTIO_RELEASES = ("istio-base", "istiod", "istio-eastwestgateway", "istio-cni", "ztunnel")
KUBERNETES_OWN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def ref(obj):
    """Kind[.group] namespace/name."""
    group = obj["apiVersion"].rpartition("/")[0]
    md = obj["metadata"]
    return "%s%s %s/%s" % (obj["kind"], "." + group if group else "", md.get("namespace") or "-", md["name"])


def is_istios(obj):
    md = obj["metadata"]
    labels = md.get("labels") or {}
    name = md["name"]
    if name.startswith("istio") or any("istio.io/" in key for key in labels):
        return True
    if labels.get("app.kubernetes.io/part-of") == "istio" or labels.get("app.kubernetes.io/managed-by") == "meshops.istio":
        return True
    release = labels.get("name", "")
    return (obj["kind"] == "Secret" and labels.get("owner") == "helm"
            and (release in ISTIO_RELEASES or release.startswith("istiod-")))


def in_group(group, groups):
    return any(group == g or group.endswith("." + g) for g in groups)


class Cleanup(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.k = kube.Kube(**kube.auth_from_params(self.p))
        self.removed = []
        self.pending = []

    def list(self, api_version, kind, **kw):
        """The objects (each with its apiVersion and kind), or none when the kind is not served."""
        try:
            items = self.k.list(api_version, kind, **kw)
        except (NotFoundError, ResourceNotFoundError):
            return []
        for obj in items:
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind)
        return items

    def delete(self, obj):
        md = obj["metadata"]
        if self.k.delete(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"), check_mode=self.check):
            self.removed.append(ref(obj))
            self.pending.append(obj)

    def wait_gone(self, what):
        """Wait for every deleted object to be gone (finalizers, namespace and CRD cleanup)."""
        deadline = time.time() + self.p["wait_timeout"]
        while self.pending and not self.check:
            self.pending = [o for o in self.pending if self.k.get(o["apiVersion"], o["kind"], o["metadata"]["name"],
                                                                  o["metadata"].get("namespace")) is not None]
            if not self.pending:
                break
            if time.time() > deadline:
                self.module.fail_json(msg="%s still there after %ss: %s" % (what, self.p["wait_timeout"], ", ".join(ref(o) for o in self.pending)),
                                      removed=self.removed)
            time.sleep(0.5)
        self.pending = []

    def objects(self):
        for o in self.p["objects"]:
            self.delete({"apiVersion": o["api_version"], "kind": o["kind"],
                         "metadata": {"name": o["name"], "namespace": o["namespace"]}})
        self.wait_gone("deleted objects")

    def istiod_leftovers(self, deleting_namespace):
        ns = self.p["namespace"]
        istiods = [d for d in self.list("apps/v1", "Deployment", label_selector="app=istiod")
                   if not (self.check and d["metadata"]["namespace"] == ns)]
        if istiods:
            return "istiod is still installed (%s); it would write its objects again" % ", ".join(ref(d) for d in istiods)
        deadline = time.time() + self.p["wait_timeout"]
        while not self.check and self.list("v1", "Pod", label_selector="app=istiod"):
            if time.time() > deadline:
                self.module.fail_json(msg="istiod pods still running %ss after their Deployment was removed" % self.p["wait_timeout"])
            time.sleep(0.5)
        for cm in self.list("v1", "ConfigMap", label_selector="istio.io/config=true"):
            md = cm["metadata"]
            if md["name"] in ISTIOD_CONFIGMAPS and not (deleting_namespace and md["namespace"] == ns):
                self.delete(cm)
        if not deleting_namespace:
            for cm in self.list("v1", "ConfigMap", namespace=ns):
                md = cm["metadata"]
                if md["name"].startswith("istio") and LEADER_ANNOTATION in (md.get("annotations") or {}):
                    self.delete(cm)
        for gc in self.list("gateway.networking.k8s.io/v1", "GatewayClass"):
            if str((gc.get("spec") or {}).get("controllerName", "")).startswith("istio.io/"):
                self.delete(gc)
        self.wait_gone("istiod's objects")
        return ""

    def namespaced_kinds(self):
        """(apiVersion, kind) of every namespaced kind that can be listed, one version per group and kind."""
        self.k.k8s.resources.invalidate_cache()
        kinds = {}
        for r in self.k.k8s.resources.search(namespaced=True):
            if isinstance(r, ResourceList) or "/" in r.name or "list" not in (r.verbs or []):
                continue
            key = (r.group, r.kind)
            if key not in kinds or getattr(r, "preferred", False):
                kinds[key] = r.group_version
        return sorted((v, kind) for (group, kind), v in kinds.items())

    def foreign(self):
        """What in the namespace is neither Istio's nor Kubernetes' own."""
        ns = self.p["namespace"]
        out = []
        for api_version, kind in self.namespaced_kinds():
            if kind == "Event":
                continue
            for obj in self.list(api_version, kind, namespace=ns):
                md = obj["metadata"]
                if (kind, md["name"]) in KUBERNETES_OWN or md.get("deletionTimestamp") or is_istios(obj):
                    continue
                out.append(ref(obj))
        return out

    def keep_namespace(self, current):
        """A namespace that stays loses what the network role put on it."""
        md = current["metadata"]
        patch = {}
        if NETWORK_LABEL in (md.get("labels") or {}):
            patch["labels"] = {NETWORK_LABEL: None}
        if CONTROL_PLANE_ANNOTATION in (md.get("annotations") or {}):
            patch["annotations"] = {CONTROL_PLANE_ANNOTATION: None}
        if patch:
            if not self.check:
                self.k.resource("v1", "Namespace").patch(body={"metadata": patch}, name=md["name"],
                                                         content_type="application/merge-patch+json")
            self.removed.append("Namespace -/%s: %s" % (md["name"], ", ".join(sorted(list(patch.get("labels", {})) + list(patch.get("annotations", {}))))))

    def crds(self):
        groups = self.p["crd_groups"]
        for crd in self.list("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
            if in_group(crd["spec"]["group"], groups):
                self.delete(crd)
        self.wait_gone("CustomResourceDefinitions")
        deadline = time.time() + self.p["wait_timeout"]
        while not self.check:
            left = [a["metadata"]["name"] for a in self.list("apiregistration.k8s.io/v1", "APIService")
                    if in_group((a.get("spec") or {}).get("group") or "", groups)]
            if not left or time.time() > deadline:
                break
            time.sleep(0.5)


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        objects=dict(type="list", elements="dict", default=[], options=dict(
            api_version=dict(type="str", required=True),
            kind=dict(type="str", required=True),
            name=dict(type="str", required=True),
            namespace=dict(type="str"),
        )),
        istiod_leftovers=dict(type="bool", default=False),
        delete_namespace=dict(type="bool", default=False),
        crd_groups=dict(type="list", elements="str", default=[]),
        wait_timeout=dict(type="int", default=120),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    job = Cleanup(module)
    p = module.params
    ns = p["namespace"]
    try:
        job.objects()
        current = job.k.get("v1", "Namespace", ns) if p["delete_namespace"] else None
        kept_by = job.foreign() if current is not None and not current["metadata"].get("deletionTimestamp") else []
        deleting_namespace = current is not None and not kept_by
        skipped = job.istiod_leftovers(deleting_namespace) if p["istiod_leftovers"] else ""
        if skipped:
            module.warn("leftovers of istiod not removed: " + skipped)
        if current is not None:
            if kept_by:
                job.keep_namespace(current)
                module.warn("namespace %s kept: it holds objects that are not Istio's: %s" % (ns, ", ".join(kept_by)))
            elif current["metadata"].get("deletionTimestamp"):
                job.pending.append(current)  # already being deleted (an earlier run that timed out)
                job.wait_gone("namespace %s" % ns)
            else:
                job.delete(current)
                job.wait_gone("namespace %s" % ns)
        if p["crd_groups"]:
            job.crds()
    except kube.KubeError as e:
        module.fail_json(msg=str(e), removed=job.removed)
    out = dict(changed=bool(job.removed), removed=job.removed, kept_by=kept_by, skipped=skipped)
    if module._diff:
        out["diff"] = dict(before=dict(present=job.removed), after=dict(present=[]))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
