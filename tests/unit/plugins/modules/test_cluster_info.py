# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cluster_info's reading of the installed control-plane revisions from the injection webhooks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from types import SimpleNamespace as NS

from ansible_collections.meshops.istio.plugins.modules import cluster_info


def mwc(labels, service_namespaces=("istio-system",), url=False):
    hooks = [NS(client_config=NS(service=NS(namespace=ns, name="istiod"))) for ns in service_namespaces]
    if url:
        hooks.append(NS(client_config=NS(service=None)))
    return NS(metadata=NS(labels=labels), webhooks=hooks)


def test_revisions_from_injection_webhooks():
    hooks = [mwc({"istio.io/rev": "default"}), mwc({"istio.io/rev": "canary"}),
             # a revision tag points at a revision; it is not one
             mwc({"istio.io/rev": "canary", "istio.io/tag": "prod"}),
             # another mesh's control plane in another namespace
             mwc({"istio.io/rev": "other"}, service_namespaces=("istio-other",)),
             # a remote whose webhook calls a URL (istiodRemote.injectionURL)
             mwc({"istio.io/rev": "1-31"}, service_namespaces=(), url=True)]
    assert cluster_info.installed_revisions(hooks, "istio-system") == ["1-31", "canary", "default"]
    assert cluster_info.installed_revisions([], "istio-system") == []
