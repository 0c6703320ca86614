#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_info
short_description: Read-only preflight facts about one cluster
version_added: 0.1.0
description:
  - Connects to the cluster and returns its API server URL (as the connection options resolve it), its Kubernetes
    version, whether it serves OpenShift's API groups, which Istio control-plane revisions it holds and which root of
    trust its C(cacerts) Secret holds (fingerprints only; no key leaves the module).
  - Never fails on an unreachable cluster; it returns O(ignore:reachable=false) with the error, so that a
    preflight can report every unreachable cluster at once instead of stopping at the first.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes.READ_ONLY
options:
  namespace:
    description: Istio's system namespace; only revisions whose injection webhooks call a Service there count.
    type: str
    default: istio-system
  request_timeout:
    description: Seconds to wait for the API server.
    type: int
    default: 10
  proxies:
    description: Also count the cluster's pods per C(istio.io/rev) annotation (the revision whose injector gave them
      their proxy, gateways included), as RV(proxy_revisions). One more list of every pod; off by default.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Preflight facts
  meshops.istio.cluster_info:
    context: cluster1
  register: info
"""

RETURN = r"""
reachable:
  description: Whether the API server answered.
  returned: always
  type: bool
error:
  description: Why the cluster could not be reached.
  returned: when not reachable
  type: str
server:
  description: The API server URL from the connection options.
  returned: always
  type: str
version:
  description: The server's Kubernetes version (C(gitVersion)).
  returned: when reachable
  type: str
  sample: v1.34.2
minor:
  description: Major and minor version as two integers.
  returned: when reachable
  type: list
  elements: int
openshift:
  description: Whether the cluster serves C(config.openshift.io).
  returned: when reachable
  type: bool
revisions:
  description:
    - The control-plane revisions installed in the cluster (V(default) for the unrevisioned one), sorted, read from the
      C(istio.io/rev) label of Istio's sidecar-injector MutatingWebhookConfigurations. Primaries and remotes both have
      one per revision; revision tags (label C(istio.io/tag)) are not revisions and are left out.
  returned: when reachable
  type: list
  elements: str
  sample: [canary, default]
revision_tags:
  description: The cluster's revision tags, tag -> revision, from the C(istio.io/tag) and C(istio.io/rev) labels of
    the tags' MutatingWebhookConfigurations (C(istioctl tag list)).
  returned: when reachable
  type: dict
  sample: {prod-stable: 1-29-6, prod-canary: 1-30-3}
proxy_revisions:
  description: Pending and running pods (not being deleted) per C(istio.io/rev) annotation value (the revision that injected their proxy), all namespaces.
  returned: when reachable and O(proxies) is set
  type: dict
  sample: {1-29-6: 4, 1-30-3: 2}
cacerts_root_sha256:
  description: SHA-256 of the C(root-cert.pem) the cluster's C(cacerts) Secret holds in O(namespace), as the
    M(meshops.istio.cacerts) module compares it; empty when there is no such Secret.
  returned: when reachable
  type: str
cacerts_root_fingerprint:
  description: SHA-256 fingerprints (and subjects) of the certificates in that C(root-cert.pem), or V(none).
  returned: when reachable
  type: str
  sample: SHA256 3A:9F:...:C1 (O=meshops.istio,CN=Root CA)
ztunnel_namespaces:
  description: Namespaces holding a DaemonSet named C(ztunnel), i.e. where the cluster runs Istio's ambient mode.
  returned: when reachable
  type: list
  elements: str
  sample: [istio-system]
cacerts_sha256:
  description:
    - Digest of the four files in that C(cacerts) Secret (a SHA-256 over their SHA-256s; no key material), as
      M(meshops.istio.mesh_ca) returns it for the controller's files; empty when the Secret is missing, lacks a file,
      or is not as M(meshops.istio.cacerts) writes it (type, label).
  returned: when reachable
  type: str
namespace_metadata:
  description: The labels and annotations of O(namespace), or null when it does not exist yet (the network role
    needs no module run when it already carries the declared network label and annotations).
  returned: when reachable
  type: dict
  sample: {labels: {topology.istio.io/network: network1}, annotations: {}}
helm_releases:
  description:
    - The Helm releases deployed in O(namespace), by release name, reduced to what C(kubernetes.core.helm) compares
      before an upgrade (chart name-version, appVersion, and a SHA-256 digest of the user-supplied values; the values
      themselves are not returned). Roles skip the helm task of a release already in the declared state.
  returned: when reachable
  type: dict
  sample: {istiod: {chart: istiod-1.31.0, app_version: 1.31.0, revision: 1, values_sha256: 5e1c...}}
simulated_nodes:
  description: Whether every node of the cluster is simulated (kwok), so that no pod really runs and no traffic
    can flow; data-plane checks are skipped there.
  returned: when reachable
  type: bool
"""

import base64
import collections
import hashlib
import re

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import ca, helm_release, kube
from ansible_collections.meshops.istio.plugins.module_utils.revision_tags import REVISION_LABEL, TAG_LABEL

try:
    from kubernetes import client as k8s_api
    from kubernetes.client.rest import ApiException
except ImportError:
    k8s_api = None
    ApiException = Exception

# kwok marks the nodes it simulates with this annotation.
KWOK_NODE = "kwok.x-k8s.io/node"


def installed_revisions(webhooks, namespace):
    """Revision labels of the injection webhooks (not revision tags) that call a Service in namespace, or a URL."""
    found = set()
    for mwc in webhooks:
        labels = mwc.metadata.labels or {}
        if REVISION_LABEL not in labels or TAG_LABEL in labels:
            continue
        services = [w.client_config.service for w in mwc.webhooks or [] if w.client_config and w.client_config.service]
        if not services or any(s.namespace == namespace for s in services):
            found.add(labels[REVISION_LABEL] or "default")
    return sorted(found)


def cacerts_state(core, namespace, timeout):
    """(root sha256, root fingerprints, digest) of the cluster's cacerts Secret; ('', 'none', '') when there is none.
    Read here so that the trust role can refuse a foreign root, and skip a Secret already as declared, without
    another module run per cluster. The digest is '' unless the Secret is as the cacerts module writes it (type
    Opaque, our label): then only its files can differ."""
    try:
        secret = core.read_namespaced_secret("cacerts", namespace, _request_timeout=timeout)
    except ApiException as e:
        if getattr(e, "status", None) == 404:
            return "", "none", ""
        raise
    files = dict((name, base64.b64decode(value)) for name, value in (secret.data or {}).items())
    labels = secret.metadata.labels or {}
    ours = secret.type == "Opaque" and all(labels.get(k) == v for k, v in kube.MANAGED_BY.items())
    digest = ca.cacerts_digest(files) if ours else ""
    root = files.get("root-cert.pem")
    if not root:
        return "", "none", digest
    return hashlib.sha256(root).hexdigest(), ca.describe_roots(root), digest


def namespace_metadata(core, namespace, timeout):
    """{labels, annotations} of the namespace, or None when it does not exist."""
    try:
        ns = core.read_namespace(namespace, _request_timeout=timeout)
    except ApiException as e:
        if getattr(e, "status", None) == 404:
            return None
        raise
    return {"labels": ns.metadata.labels or {}, "annotations": ns.metadata.annotations or {}}


def main():
    spec = kube.auth_argument_spec()
    spec.update(request_timeout=dict(type="int", default=10), namespace=dict(type="str", default="istio-system"),
                proxies=dict(type="bool", default=False))
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    out = dict(changed=False, reachable=False, server="")
    try:
        k = kube.Kube(**kube.auth_from_params(p))
        out["server"] = k.k8s.configuration.host
        info = k8s_api.VersionApi(k.api_client).get_code(_request_timeout=p["request_timeout"])
        groups = k8s_api.ApisApi(k.api_client).get_api_versions(_request_timeout=p["request_timeout"]).groups
        core = k8s_api.CoreV1Api(k.api_client)
        nodes = core.list_node(_request_timeout=p["request_timeout"]).items
        ns_meta = namespace_metadata(core, p["namespace"], p["request_timeout"])
        root_sha256, root_fingerprint, cacerts_sha256 = cacerts_state(core, p["namespace"], p["request_timeout"])
        releases = core.list_namespaced_secret(p["namespace"], label_selector=helm_release.SELECTOR,
                                               _request_timeout=p["request_timeout"]).items
        webhooks = k8s_api.AdmissionregistrationV1Api(k.api_client).list_mutating_webhook_configuration(
            label_selector=REVISION_LABEL, _request_timeout=p["request_timeout"]).items
        ztunnels = k8s_api.AppsV1Api(k.api_client).list_daemon_set_for_all_namespaces(
            field_selector="metadata.name=ztunnel", _request_timeout=p["request_timeout"]).items
        pods = core.list_pod_for_all_namespaces(_request_timeout=p["request_timeout"]).items if p["proxies"] else None
    except Exception as e:  # any failure to connect is a preflight finding, not a crash
        out["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        module.exit_json(**out)
    m = re.match(r"v?(\d+)\.(\d+)", info.git_version or "")
    out.update(reachable=True, version=info.git_version, minor=[int(m.group(1)), int(m.group(2))] if m else [0, 0],
               openshift=any(g.name == "config.openshift.io" for g in groups or []),
               revisions=installed_revisions(webhooks, p["namespace"]),
               revision_tags=dict((w.metadata.labels[TAG_LABEL], w.metadata.labels.get(REVISION_LABEL) or "default")
                                  for w in webhooks if TAG_LABEL in (w.metadata.labels or {})),
               namespace_metadata=ns_meta, cacerts_root_sha256=root_sha256, cacerts_root_fingerprint=root_fingerprint,
               cacerts_sha256=cacerts_sha256,
               ztunnel_namespaces=sorted(d.metadata.namespace for d in ztunnels),
               helm_releases=helm_release.deployed({"labels": r.metadata.labels, "data": r.data} for r in releases),
               simulated_nodes=bool(nodes) and all(KWOK_NODE in (n.metadata.annotations or {}) for n in nodes))
    if pods is not None:
        # The injector records the revision as an annotation of the pod (the gateway charts' pods too).
        # Pods that finished (Jobs) or are being deleted no longer use their proxy's revision.
        out["proxy_revisions"] = dict(collections.Counter(po.metadata.annotations[REVISION_LABEL] for po in pods
                                                          if REVISION_LABEL in (po.metadata.annotations or {})
                                                          and po.status.phase in ("Pending", "Running")
                                                          and not po.metadata.deletion_timestamp))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
