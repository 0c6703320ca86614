# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway API manifests (reading, cleaning, ordering, newer-in-cluster rules) and the ambient east-west Gateway."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import gateway_api

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    gateway.networking.k8s.io/bundle-version: v1.5.1
    gateway.networking.k8s.io/channel: standard
  creationTimestamp: null
  name: gateways.gateway.networking.k8s.io
spec:
  group: gateway.networking.k8s.io
status:
  acceptedNames: {kind: "", plural: ""}
  conditions: null
"""

VAP = """
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  annotations:
    gateway.networking.k8s.io/bundle-version: v1.5.0-dev
  name: safe-upgrades.gateway.networking.k8s.io
---
"""


def crd(version, channel="standard", name="gateways.gateway.networking.k8s.io"):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "spec": {"group": gateway_api.GROUP},
            "metadata": {"name": name, "annotations": {gateway_api.BUNDLE_VERSION: version, gateway_api.CHANNEL: channel}}}


def test_load_clean_and_order():
    objects = gateway_api.load_documents(VAP + CRD, "standard-install.yaml")
    assert [o["kind"] for o in objects] == ["ValidatingAdmissionPolicy", "CustomResourceDefinition"]
    desired = gateway_api.ordered([gateway_api.desired_object(o) for o in objects])
    assert [gateway_api.key(o) for o in desired] == [
        "CustomResourceDefinition/gateways.gateway.networking.k8s.io", "ValidatingAdmissionPolicy/safe-upgrades.gateway.networking.k8s.io"]
    assert "status" not in desired[0] and "creationTimestamp" not in desired[0]["metadata"]
    assert objects[1]["status"], "the input is not modified"


def test_list_kind_is_expanded():
    text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
    assert [o["metadata"]["name"] for o in gateway_api.load_documents(text, "x")] == ["a"]


@pytest.mark.parametrize("text, fragment", [
    ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n", "kubectl kustomize"),
    ("resources:\n- standard/a.yaml\n", "is a kustomization"),
    ("just: a map\n", "not a Kubernetes object"),
    ("a: [b\n", "not valid YAML"),
    ("apiVersion: v1\nkind: List\nitems: [1]\n", "List item"),
])
def test_bad_documents(text, fragment):
    with pytest.raises(gateway_api.ManifestError) as e:
        gateway_api.load_documents(text, "src.yaml")
    assert fragment in str(e.value) and "src.yaml" in str(e.value)


def test_source_files(tmp_path):
    (tmp_path / "b.yaml").write_text(CRD)
    (tmp_path / "a.yml").write_text(VAP)
    (tmp_path / "README.md").write_text("no")
    (tmp_path / "sub").mkdir()
    assert gateway_api.source_files(str(tmp_path)) == [str(tmp_path / "a.yml"), str(tmp_path / "b.yaml")]
    assert gateway_api.source_files(str(tmp_path / "b.yaml")) == [str(tmp_path / "b.yaml")]
    with pytest.raises(gateway_api.ManifestError, match="does not exist"):
        gateway_api.source_files(str(tmp_path / "nope"))
    with pytest.raises(gateway_api.ManifestError, match="holds no"):
        gateway_api.source_files(str(tmp_path / "sub"))
    # A kustomization beside manifests is skipped; alone, it gets the kustomize hint.
    (tmp_path / "kustomization.yaml").write_text("resources: [b.yaml]\n")
    assert gateway_api.source_files(str(tmp_path)) == [str(tmp_path / "a.yml"), str(tmp_path / "b.yaml")]
    (tmp_path / "sub" / "kustomization.yaml").write_text("resources: [standard/a.yaml]\n")
    with pytest.raises(gateway_api.ManifestError, match="is a kustomization with no manifest of its own"):
        gateway_api.source_files(str(tmp_path / "sub"))


def test_keep_reason():
    ours = crd("v1.5.1")
    assert gateway_api.keep_reason(None, ours) is None
    assert gateway_api.keep_reason(crd("v1.4.0"), ours) is None, "older: upgrade"
    assert gateway_api.keep_reason(crd("v1.5.1"), ours) is None
    assert "newer than v1.5.1" in gateway_api.keep_reason(crd("v1.6.0"), ours)
    assert "experimental" in gateway_api.keep_reason(crd("v1.5.1", "experimental"), ours)
    assert gateway_api.keep_reason(crd("v1.5.1", "experimental"), crd("v1.5.1", "experimental")) is None
    assert gateway_api.keep_reason(crd("v1.6.0-rc.1"), crd("v1.6.0")) is None, "a pre-release is older than its release"
    unannotated = {"kind": "CustomResourceDefinition", "metadata": {"name": "x"}}
    assert gateway_api.keep_reason(unannotated, ours) is None
    assert gateway_api.keep_reason(crd("v9.0.0"), {"kind": "ValidatingAdmissionPolicy", "metadata": {}}) is None
    # The bundle's admission policy follows the same rule as its CRDs.
    policy = {"kind": "ValidatingAdmissionPolicy", "metadata": {"annotations": {gateway_api.BUNDLE_VERSION: "v1.5.0-dev"}}}
    newer_policy = {"kind": "ValidatingAdmissionPolicy", "metadata": {"annotations": {gateway_api.BUNDLE_VERSION: "v1.6.0"}}}
    assert "newer" in gateway_api.keep_reason(newer_policy, policy)
    assert gateway_api.keep_reason(policy, newer_policy) is None


def test_check_version():
    objects = [crd("v1.5.1"), crd("v1.5.0", name="httproutes.gateway.networking.k8s.io"),
               {"kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p", "annotations": {gateway_api.BUNDLE_VERSION: "v1.5.0-dev"}}}]
    assert gateway_api.check_version(objects, "v1.5.1") == ["httproutes.gateway.networking.k8s.io is bundle version v1.5.0"]
    assert gateway_api.check_version(objects[:1], "1.5.1") == []


def test_eastwest_gateway_is_the_sample():
    gw = gateway_api.eastwest_gateway("istio-system", "network2")
    assert gw == {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system", "labels": {"topology.istio.io/network": "network2"}},
        "spec": {"gatewayClassName": "istio-east-west", "listeners": [
            {"name": "mesh", "port": 15008, "protocol": "HBONE",
             "tls": {"mode": "Terminate", "options": {"gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL"}}}]}}
    labels = gateway_api.eastwest_gateway("mesh", "n1", revision="canary", labels={"a": "b"})["metadata"]["labels"]
    assert labels == {"a": "b", "topology.istio.io/network": "n1", "istio.io/rev": "canary"}


def status(addresses=(), programmed=None):
    conditions = [{"type": "Accepted", "status": "True"}]
    if programmed:
        conditions.append({"type": "Programmed", "status": programmed[0], "reason": programmed[1], "message": "m"})
    return {"status": {"addresses": [{"type": "IPAddress", "value": a} for a in addresses], "conditions": conditions}}


def test_gateway_state():
    assert gateway_api.gateway_state(None) == (False, "", "the Gateway does not exist")
    assert gateway_api.gateway_state(status()) == (False, "", "Programmed is not reported yet")
    assert gateway_api.gateway_state(status(programmed=("False", "AddressNotAssigned"))) == (
        False, "", "Programmed is False (AddressNotAssigned: m)")
    assert gateway_api.gateway_state(status(["203.0.113.9"], ("True", "Programmed"))) == (True, "203.0.113.9", "Programmed=True, address 203.0.113.9")
    assert gateway_api.gateway_state(status(programmed=("True", "Programmed")))[0] is False
