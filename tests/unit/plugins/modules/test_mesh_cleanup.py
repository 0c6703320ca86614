# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mesh_cleanup's rules: what counts as Istio's in the system namespace, and which CRD groups a purge covers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.modules import mesh_cleanup


def obj(kind, name, labels=None, api_version="v1", namespace="istio-system"):
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


def test_istios_objects():
    assert mesh_cleanup.is_istios(obj("ConfigMap", "istio-ca-root-cert"))
    assert mesh_cleanup.is_istios(obj("Pod", "ztunnel-abcde", {"sidecar.istio.io/inject": "false"}))
    assert mesh_cleanup.is_istios(obj("Secret", "token", {"app.kubernetes.io/managed-by": "meshops.istio"}))
    assert mesh_cleanup.is_istios(obj("DaemonSet", "cni", {"app.kubernetes.io/part-of": "istio"}))
    assert mesh_cleanup.is_istios(obj("Secret", "sh.helm.release.v1.ztunnel.v1", {"owner": "helm", "name": "ztunnel"}))
    assert mesh_cleanup.is_istios(obj("Secret", "sh.helm.release.v1.istiod-1-31.v2", {"owner": "helm", "name": "istiod-1-31"}))


def test_not_istios_objects():
    assert not mesh_cleanup.is_istios(obj("ConfigMap", "my-settings"))
    assert not mesh_cleanup.is_istios(obj("Secret", "sh.helm.release.v1.myapp.v1", {"owner": "helm", "name": "myapp"}))
    assert not mesh_cleanup.is_istios(obj("Deployment", "app", {"app.kubernetes.io/managed-by": "Helm", "istio": "no"}))


def test_crd_groups_cover_subdomains_only():
    assert mesh_cleanup.in_group("networking.istio.io", ["istio.io"])
    assert mesh_cleanup.in_group("istio.io", ["istio.io"])
    assert not mesh_cleanup.in_group("notistio.io", ["istio.io"])
    assert not mesh_cleanup.in_group("gateway.networking.x-k8s.io", ["gateway.networking.k8s.io"])
    assert mesh_cleanup.in_group("gateway.networking.k8s.io", ["istio.io", "gateway.networking.k8s.io"])


def test_ref_names_kind_group_namespace_and_name():
    assert mesh_cleanup.ref(obj("ConfigMap", "a", namespace="default")) == "ConfigMap default/a"
    crd = obj("CustomResourceDefinition", "gateways.networking.istio.io", api_version="apiextensions.k8s.io/v1", namespace=None)
    assert mesh_cleanup.ref(crd) == "CustomResourceDefinition.apiextensions.k8s.io -/gateways.networking.istio.io"
