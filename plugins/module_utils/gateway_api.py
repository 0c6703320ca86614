# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway API pieces of an ambient mesh, without cluster access: the CRD manifests (read, cleaned, ordered, and
whether a cluster's copy is newer than ours), the ambient east-west Gateway, and how to read its status."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

try:
    import yaml
except ImportError:  # reported by the module (requirements: PyYAML, a kubernetes client dependency)
    yaml = None

GROUP = "gateway.networking.k8s.io"
API_VERSION = GROUP + "/v1"
BUNDLE_VERSION = GROUP + "/bundle-version"
CHANNEL = GROUP + "/channel"
CRD_KIND = "CustomResourceDefinition"
NETWORK_LABEL = "topology.istio.io/network"
REVISION_LABEL = "istio.io/rev"
EASTWEST_CLASS = "istio-east-west"
EASTWEST_NAME = "istio-eastwestgateway"
HBONE_PORT = 15008
# Server-owned metadata a rendered manifest may carry (kubectl get -o yaml); never part of what we ask for.
SERVER_METADATA = ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_HINT = ("render it first (kubectl kustomize <dir or URL> > crds.yaml) and point the source at the result, or at the "
                  "directory of CRD files it lists (such as config/crd/standard)")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z][0-9A-Za-z.-]*)?")


class ManifestError(Exception):
    pass


def parse_version(text):
    """(major, minor, patch, is_release) of a bundle version such as v1.5.1 or v1.5.0-dev; None if unparsable."""
    match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) is None


def source_files(path):
    """The manifest files of a local source: the file itself, or a directory's *.yaml/*.yml/*.json (not recursive),
    sorted by name."""
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        entries = os.listdir(path)
        names = sorted(n for n in entries if n.endswith(MANIFEST_SUFFIXES) and n not in KUSTOMIZATION_FILES
                       and os.path.isfile(os.path.join(path, n)))
        if not names and any(n in KUSTOMIZATION_FILES for n in entries):
            raise ManifestError("directory %s is a kustomization with no manifest of its own, which this module does not build; %s"
                                % (path, KUSTOMIZE_HINT))
        if not names:
            raise ManifestError("directory %s holds no .yaml, .yml or .json file" % path)
        return [os.path.join(path, n) for n in names]
    if os.path.isfile(path):
        return [path]
    raise ManifestError("%s does not exist (on the controller); point it at a directory or file of CRD manifests, or an http(s) URL" % path)


def load_documents(text, origin):
    """The Kubernetes objects in a YAML (or JSON) text: multi-document, `kind: List` expanded, empty documents skipped."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise ManifestError("%s is not valid YAML: %s" % (origin, e))
    objects = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and (doc.get("kind") == "Kustomization" or not doc.get("kind") and "resources" in doc):
            raise ManifestError("%s is a kustomization, which this module does not build; %s" % (origin, KUSTOMIZE_HINT))
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            raise ManifestError("%s holds a document that is not a Kubernetes object (no apiVersion and kind)" % origin)
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                if not isinstance(item, dict) or not item.get("apiVersion") or not item.get("kind"):
                    raise ManifestError("%s holds a List item that is not a Kubernetes object" % origin)
                objects.append(item)
        else:
            objects.append(doc)
    return objects


def desired_object(obj):
    """What to ask the cluster for: the manifest without its status and server-owned metadata."""
    out = dict((k, v) for k, v in obj.items() if k != "status")
    metadata = dict((k, v) for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA)
    if not metadata.get("name"):
        raise ManifestError("a %s in the manifests has no metadata.name" % obj.get("kind"))
    out["metadata"] = metadata
    return out


def ordered(objects):
    """CRDs first (in manifest order), then everything else: policies about CRDs come after the CRDs."""
    return [o for o in objects if o["kind"] == CRD_KIND] + [o for o in objects if o["kind"] != CRD_KIND]


def key(obj):
    return "%s/%s" % (obj["kind"], obj["metadata"]["name"])


def bundle(obj):
    """(bundle version, channel) from a Gateway API object's annotations; None for what it does not say."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(BUNDLE_VERSION), annotations.get(CHANNEL)


def keep_reason(current, desired):
    """Why the cluster's copy of a Gateway API object must not be replaced by ours (None: replace it when it differs).

    A newer bundle version (another tool or a user installed it; going back could drop fields in use), or the
    experimental channel where ours is standard (experimental is a superset: going to standard drops fields)."""
    if current is None:
        return None
    have_version, have_channel = bundle(current)
    want_version, want_channel = bundle(desired)
    have, want = parse_version(have_version), parse_version(want_version)
    if have and want and have > want:
        return "the cluster has %s %s, newer than %s" % (have_channel or "", have_version, want_version)
    if have_channel == "experimental" and want_channel == "standard":
        return "the cluster has the experimental channel (%s), a superset of the standard one" % (have_version or "unknown version")
    return None


def check_version(objects, version):
    """Problems with CRDs whose bundle version is not the one expected (e.g. the one the Istio release pins)."""
    problems = []
    want = parse_version(version)
    for obj in objects:
        if obj["kind"] != CRD_KIND or obj.get("spec", {}).get("group") != GROUP:
            continue
        have_version = bundle(obj)[0]
        if parse_version(have_version) != want:
            problems.append("%s is bundle version %s" % (obj["metadata"]["name"], have_version or "(not annotated)"))
    return problems


def summary(obj):
    """A small, readable stand-in for a (large) CRD in diffs: its bundle version and channel."""
    if obj is None:
        return None
    version, channel = bundle(obj)
    return {"bundle-version": version, "channel": channel} if (version or channel) else {"present": True}


def eastwest_gateway(namespace, network, revision=None, labels=None):
    """The ambient east-west Gateway, as samples/multicluster/gen-eastwest-gateway.sh --ambient renders it, in the
    given namespace, with the revision label when a revision is used (the docs: when there is no default revision)."""
    meta_labels = dict(labels or {})
    meta_labels[NETWORK_LABEL] = network
    if revision:
        meta_labels[REVISION_LABEL] = revision
    return {
        "apiVersion": API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": EASTWEST_NAME, "namespace": namespace, "labels": meta_labels},
        "spec": {
            "gatewayClassName": EASTWEST_CLASS,
            "listeners": [{
                "name": "mesh",
                "port": HBONE_PORT,
                "protocol": "HBONE",
                "tls": {"mode": "Terminate", "options": {"gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL"}},
            }],
        },
    }


def condition(obj, kind):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def gateway_state(obj):
    """(ready, address, why) of a Gateway: ready when Programmed=True and status.addresses is not empty."""
    if obj is None:
        return False, "", "the Gateway does not exist"
    addresses = [a.get("value") for a in ((obj.get("status") or {}).get("addresses") or []) if a.get("value")]
    programmed = condition(obj, "Programmed")
    if programmed is None or programmed.get("status") != "True":
        why = "Programmed is %s" % ("not reported yet" if programmed is None else "%s (%s: %s)" % (
            programmed.get("status"), programmed.get("reason"), programmed.get("message")))
        return False, addresses[0] if addresses else "", why
    if not addresses:
        return False, "", "Programmed=True but status.addresses is empty"
    return True, addresses[0], "Programmed=True, address %s" % addresses[0]
