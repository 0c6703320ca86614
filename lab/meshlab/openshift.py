"""Make a lab cluster look like OpenShift to API discovery: the CRDs of the OpenShift API groups a mesh installer looks
at or writes to (config.openshift.io for detection, security.openshift.io SCCs the istio-cni chart grants, multus'
k8s.cni.cncf.io NetworkAttachmentDefinition, route.openshift.io), plus the objects a real cluster has of them.

Only the APIs exist; nothing enforces SCCs or runs multus (kwok runs no containers anyway).
"""

GROUPS = {
    # group: (plural, kind, scope, version)
    "config.openshift.io": ("clusterversions", "ClusterVersion", "Cluster", "v1"),
    "security.openshift.io": ("securitycontextconstraints", "SecurityContextConstraints", "Cluster", "v1"),
    "route.openshift.io": ("routes", "Route", "Namespaced", "v1"),
    "k8s.cni.cncf.io": ("network-attachment-definitions", "NetworkAttachmentDefinition", "Namespaced", "v1"),
}


def crds():
    out = []
    for group, (plural, kind, scope, version) in GROUPS.items():
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": plural, "kind": kind, "singular": kind.lower(), "listKind": kind + "List"},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   # SCCs keep their fields at the top level, not under spec.
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}})
    return out


def objects(version):
    """The ClusterVersion and the two SCCs Istio's charts and docs refer to."""
    scc = {"apiVersion": "security.openshift.io/v1", "kind": "SecurityContextConstraints",
           "allowPrivilegedContainer": False, "runAsUser": {"type": "MustRunAsRange"},
           "seLinuxContext": {"type": "MustRunAs"}, "users": [], "groups": []}
    return [
        {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion", "metadata": {"name": "version"},
         "spec": {"channel": "stable-4.20", "clusterID": "00000000-0000-4000-8000-000000000000"},
         "status": {"desired": {"version": version}}},
        dict(scc, metadata={"name": "restricted-v2"}),
        dict(scc, metadata={"name": "privileged"}, allowPrivilegedContainer=True, runAsUser={"type": "RunAsAny"},
             seLinuxContext={"type": "RunAsAny"}, groups=["system:cluster-admins", "system:nodes"]),
    ]
