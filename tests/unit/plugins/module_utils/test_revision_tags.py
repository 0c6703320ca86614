# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revision tag objects as the istiod chart's revision-tags templates and istioctl make them (pure functions)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils import revision_tags as rt


def injector(revision, service=None, url=None, tag=None, namespace="istio-system"):
    cc = {"url": url} if url else {"service": {"name": service or "istiod-" + revision, "namespace": namespace, "path": "/inject", "port": 443},
                                   "caBundle": "Q0E="}
    labels = {"istio.io/rev": revision}
    if tag:
        labels["istio.io/tag"] = tag
    return {"metadata": {"name": "istio-sidecar-injector-" + revision, "labels": labels},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": cc, "reinvocationPolicy": "IfNeeded"}]}


def test_canonical_webhook_is_the_revisions_own_not_a_tag():
    hooks = [injector("1-29-6", tag="prod-stable"), injector("1-29-6"), injector("1-30-3")]
    assert rt.canonical_webhook(hooks, "1-29-6", "istio-system") is hooks[1]
    assert rt.canonical_webhook(hooks, "1-31-0", "istio-system") is None
    assert rt.canonical_webhook([injector("1-29-6", namespace="other")], "1-29-6", "istio-system") is None
    # A remote's webhook calls a URL (or a Service leading to its primary): it counts.
    remote = injector("1-29-6", url="https://198.51.100.1:15017/inject/cluster/c2/net/n2")
    assert rt.canonical_webhook([remote], "1-29-6", "istio-system") is remote


def test_tag_webhook_as_the_chart_renders_it():
    mwc = rt.tag_webhook("prod-stable", "1-29-6", injector("1-29-6"), "istio-system", {"app.kubernetes.io/managed-by": "meshops.istio"})
    assert mwc["metadata"]["name"] == "istio-revision-tag-prod-stable"
    assert mwc["metadata"]["labels"]["istio.io/tag"] == "prod-stable" and mwc["metadata"]["labels"]["istio.io/rev"] == "1-29-6"
    assert [w["name"] for w in mwc["webhooks"]] == ["rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io"]
    ns_hook, obj_hook = mwc["webhooks"]
    assert ns_hook["clientConfig"]["service"]["name"] == "istiod-1-29-6" and ns_hook["clientConfig"]["caBundle"] == "Q0E="
    assert ns_hook["reinvocationPolicy"] == "IfNeeded" and ns_hook["failurePolicy"] == "Fail"
    assert {"key": "istio.io/rev", "operator": "In", "values": ["prod-stable"]} in ns_hook["namespaceSelector"]["matchExpressions"]
    assert {"key": "istio.io/rev", "operator": "In", "values": ["prod-stable"]} in obj_hook["objectSelector"]["matchExpressions"]
    assert rt.webhook_name("prod-stable", "mesh") == "istio-revision-tag-prod-stable-mesh"


def test_the_default_tag_takes_istio_injection_enabled_namespaces_too():
    mwc = rt.tag_webhook("default", "1-29-6", injector("1-29-6"), "istio-system", {})
    assert [w["name"] for w in mwc["webhooks"]][2:] == ["namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"]
    assert mwc["webhooks"][2]["namespaceSelector"]["matchExpressions"] == [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]


def test_tag_service_selects_the_revisions_istiod():
    svc = rt.tag_service("prod-stable", "1-30-3", "istio-system", {})
    assert svc["metadata"]["name"] == "istiod-revision-tag-prod-stable"
    assert svc["spec"]["selector"] == {"app": "istiod", "istio.io/rev": "1-30-3", "istio": None}
    assert [p["port"] for p in svc["spec"]["ports"]] == [15010, 15012, 443, 15014]
    assert rt.tag_service("t", "default", "istio-system", {})["spec"]["selector"] == {"app": "istiod", "istio": "pilot", "istio.io/rev": None}


def test_live_tags_and_ours():
    ours = injector("1-29-6", tag="prod-stable")
    ours["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "meshops.istio"
    tags, mine = rt.live_tags([ours, injector("1-30-3", tag="by-istioctl"), injector("1-30-3")])
    assert tags == {"prod-stable": "1-29-6", "by-istioctl": "1-30-3"} and mine == {"prod-stable"}
