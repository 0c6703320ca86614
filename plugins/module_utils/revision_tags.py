# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revision tags as Istio makes them (`istioctl tag set`, the istiod chart's revision-tags templates): per tag a
MutatingWebhookConfiguration `istio-revision-tag-<tag>` that sends pods of namespaces labelled `istio.io/rev=<tag>`
to the revision's injector, and a Service `istiod-revision-tag-<tag>` that records the mapping. Like istioctl, the
webhook's client config is taken from the revision's own injection webhook (`istio-sidecar-injector-<rev>`), so a
remote cluster's tag calls the primary's istiod the way its revision does. Pure functions; the module applies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.meshops.istio.plugins.module_utils.gateway_api import REVISION_LABEL

TAG_LABEL = "istio.io/tag"
DEFAULT_TAG = "default"
INJECTOR_SUFFIX = "sidecar-injector.istio.io"

_NOT_DISABLED = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}


def webhook_name(tag, namespace):
    return "istio-revision-tag-%s" % tag if namespace == "istio-system" else "istio-revision-tag-%s-%s" % (tag, namespace)


def service_name(tag):
    return "istiod-revision-tag-%s" % tag


def canonical_webhook(webhooks, revision, namespace):
    """The revision's own injection webhook configuration (revision label, no tag label, calling a Service in
    namespace or a URL), or None."""
    for mwc in webhooks:
        labels = mwc["metadata"].get("labels") or {}
        if TAG_LABEL in labels or (labels.get(REVISION_LABEL) or "default") != revision:
            continue
        hooks = [w for w in mwc.get("webhooks") or [] if w["name"].endswith(INJECTOR_SUFFIX)]
        services = [(w.get("clientConfig") or {}).get("service") for w in hooks]
        if hooks and all(s is None or s.get("namespace") == namespace for s in services):
            return mwc
    return None


def live_tags(webhooks):
    """{tag: revision} of the tag webhook configurations found, and the names of those this collection made."""
    tags, ours = {}, set()
    for mwc in webhooks:
        labels = mwc["metadata"].get("labels") or {}
        if TAG_LABEL in labels:
            tags[labels[TAG_LABEL]] = labels.get(REVISION_LABEL) or "default"
            if labels.get("app.kubernetes.io/managed-by") == "meshops.istio":
                ours.add(labels[TAG_LABEL])
    return tags, ours


def absent(key):
    return {"key": key, "operator": "DoesNotExist"}


def _hook(prefix, client_config, reinvocation, namespace_selector, object_selector):
    return {"name": prefix + INJECTOR_SUFFIX, "clientConfig": client_config, "sideEffects": "None",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "failurePolicy": "Fail", "reinvocationPolicy": reinvocation, "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchExpressions": namespace_selector},
            "objectSelector": {"matchExpressions": object_selector}}


def tag_webhook(tag, revision, canonical, namespace, labels):
    """The tag's MutatingWebhookConfiguration, as the chart's revision-tags-mwc.yaml renders it."""
    first = [w for w in canonical["webhooks"] if w["name"].endswith(INJECTOR_SUFFIX)][0]
    cc = copy.deepcopy(first["clientConfig"])
    reinvocation = first.get("reinvocationPolicy") or "Never"
    hooks = [
        _hook("rev.namespace.", cc, reinvocation,
              [{"key": REVISION_LABEL, "operator": "In", "values": [tag]}, absent("istio-injection")], [_NOT_DISABLED]),
        _hook("rev.object.", cc, reinvocation, [absent(REVISION_LABEL), absent("istio-injection")],
              [_NOT_DISABLED, {"key": REVISION_LABEL, "operator": "In", "values": [tag]}]),
    ]
    if tag == DEFAULT_TAG:
        # The default tag also takes what the default revision's own webhook takes: istio-injection=enabled
        # namespaces, and pods labelled sidecar.istio.io/inject=true.
        hooks += [
            _hook("namespace.", cc, reinvocation, [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}],
                  [_NOT_DISABLED]),
            _hook("object.", cc, reinvocation, [absent("istio-injection"), absent(REVISION_LABEL)],
                  [{"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]}, absent(REVISION_LABEL)]),
        ]
    meta_labels = dict(labels, **{TAG_LABEL: tag, REVISION_LABEL: revision, "app": "sidecar-injector",
                                  "app.kubernetes.io/name": "istiod"})
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": webhook_name(tag, namespace), "labels": meta_labels}, "webhooks": hooks}


def tag_service(tag, revision, namespace, labels):
    """The tag's Service, as revision-tags-svc.yaml renders it (its selector finds the revision's istiod pods)."""
    if revision == "default":
        selector = {"app": "istiod", "istio": "pilot", REVISION_LABEL: None}
    else:
        selector = {"app": "istiod", REVISION_LABEL: revision, "istio": None}
    ports = [{"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
             {"port": 15012, "name": "https-dns", "protocol": "TCP"},
             {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
             {"port": 15014, "name": "http-monitoring", "protocol": "TCP"}]
    meta_labels = dict(labels, **{TAG_LABEL: tag, REVISION_LABEL: revision, "app": "istiod", "istio": "pilot",
                                  "app.kubernetes.io/name": "istiod"})
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service_name(tag), "namespace": namespace, "labels": meta_labels},
            "spec": {"ports": ports, "selector": selector}}
