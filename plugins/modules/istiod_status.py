#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: istiod_status
short_description: What each istiod of a cluster sees of the mesh (remote clusters, network gateways)
version_added: 0.1.0
description:
  - Reads C(/debug/clusterz) and C(/debug/networkz) from every Running istiod pod of the cluster through a
    Kubernetes API port-forward to its monitoring port, as C(istioctl remote-clusters) does.
  - With O(expect_synced) and O(expect_gateways), waits up to O(timeout) seconds until every istiod reports
    those clusters C(synced) and those east-west gateways, and fails naming what is missing otherwise.
  - Then reads C(/debug/syncz) of each istiod once, the proxies it serves (as C(istioctl proxy-status) lists them).
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes.READ_ONLY
options:
  namespace:
    description: The Istio system namespace.
    type: str
    default: istio-system
  revision:
    description: Only istiod pods of this revision (label C(istio.io/rev)).
    type: str
  expect_synced:
    description: Cluster IDs every istiod must report as C(synced).
    type: list
    elements: str
    default: []
  expect_absent:
    description:
      - Cluster IDs no istiod may list any more (a decommissioned cluster), whatever their status.
    type: list
    elements: str
    default: []
  expect_gateways:
    description: East-west gateways every istiod must list in C(/debug/networkz).
    type: list
    elements: dict
    default: []
    suboptions:
      network:
        description: The gateway's network.
        type: str
        required: true
      address:
        description: The gateway's address.
        type: str
        required: true
      port:
        description:
          - The gateway's port, when it matters. It must be listed as the gateway's C(Port) (sidecar mode, 15443) or
            C(HBONEPort) (ambient, 15008).
        type: int
  timeout:
    description: Seconds to wait for the expectations. V(0) checks once.
    type: int
    default: 90
"""

EXAMPLES = r"""
- name: Every istiod of cluster1 sees cluster2 synced and network2's gateway
  meshops.istio.istiod_status:
    context: cluster1
    expect_synced: [cluster2]
    expect_gateways:
      - {network: network2, address: 203.0.113.20}
  register: view

- name: Show it
  ansible.builtin.debug:
    var: view.istiods
"""

RETURN = r"""
istiods:
  description: One entry per Running istiod pod.
  returned: always
  type: list
  elements: dict
  contains:
    pod:
      description: Pod name.
      type: str
    revision:
      description: The pod's C(istio.io/rev) label.
      type: str
    clusters:
      description: C(/debug/clusterz) rows (C(id), C(secretName), C(syncStatus)); the first is the local cluster.
      type: list
      elements: dict
    gateways:
      description: C(/debug/networkz) rows (network gateways istiod knows).
      type: list
      elements: dict
    proxies:
      description:
        - The proxies this istiod serves, in every cluster (C(/debug/syncz)), sorted by cluster and name; C(status)
          per xDS type (C(CDS), C(LDS), C(EDS), C(RDS)) is C(SYNCED), C(STALE) or C(NOT SENT), as in
          C(istioctl proxy-status).
      type: list
      elements: dict
      sample: [{proxy: curl-5b4c7f9d8-x2x9q.sample, cluster_id: cluster2, type: sidecar, version: 1.30.3,
                status: {CDS: SYNCED, LDS: SYNCED, EDS: SYNCED, RDS: SYNCED}}]
    problems:
      description: What is missing compared with the expectations.
      type: list
      elements: str
    summary:
      description: One readable line of what this istiod sees.
      type: str
      sample: "istiod-6f7c9-x2k4p: clusters cluster1=synced(local) cluster2=synced; gateways network2=203.0.113.20:15443"
"""

import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import istiod, kube


def observe(core, p):
    """[(pod, view)] of every Running istiod."""
    views = []
    for pod in istiod.istiod_pods(core, p["namespace"], p["revision"]):
        view = dict(pod=pod.metadata.name, revision=(pod.metadata.labels or {}).get("istio.io/rev", ""))
        try:
            view["clusters"] = istiod.http_get(core, pod, "/debug/clusterz") or []
            view["gateways"] = istiod.http_get(core, pod, "/debug/networkz") or []
            view["problems"] = istiod.evaluate(view["clusters"], view["gateways"], p["expect_synced"], p["expect_gateways"],
                                               p["expect_absent"])
        except Exception as e:  # a pod just starting: not ready yet, try again
            view.update(clusters=[], gateways=[], problems=["debug endpoints unreachable: %s" % e])
        view["summary"] = summary(view)
        views.append((pod, view))
    return views


def summary(view):
    """One line a person can read: what this istiod sees."""
    clusters = " ".join("%s=%s%s" % (c.get("id"), c.get("syncStatus"), "" if c.get("secretName") else "(local)")
                        for c in view["clusters"])
    # An ambient (HBONE) gateway has no mTLS Port, only HBONEPort.
    gateways = " ".join("%s=%s:%s" % (g.get("Network"), g.get("Addr"), g.get("Port") or ("%s(hbone)" % g["HBONEPort"] if g.get("HBONEPort") else 0))
                        for g in view["gateways"]) or "none"
    return "%s: clusters %s; gateways %s" % (view["pod"], clusters or "unknown", gateways)


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        revision=dict(type="str"),
        expect_synced=dict(type="list", elements="str", default=[]),
        expect_absent=dict(type="list", elements="str", default=[]),
        expect_gateways=dict(type="list", elements="dict", default=[], options=dict(
            network=dict(type="str", required=True), address=dict(type="str", required=True), port=dict(type="int"))),
        timeout=dict(type="int", default=90),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    core = kube.Kube(**kube.auth_from_params(p)).core()
    deadline = time.time() + p["timeout"]
    while True:
        observed = observe(core, p)
        views = [view for dummy, view in observed]
        ok = bool(views) and not any(v["problems"] for v in views)
        if ok or time.time() >= deadline:
            break
        time.sleep(1)
    if not views:
        module.fail_json(msg="no Running istiod pod in namespace %s" % p["namespace"], istiods=[])
    for pod, view in observed:
        try:
            view["proxies"] = istiod.proxies(istiod.http_get(core, pod, "/debug/syncz"))
        except Exception:  # reported as unknown; the checks above decide the result
            view["proxies"] = []
    if not ok:
        lines = ["%s: %s" % (v["pod"], problem) for v in views for problem in v["problems"]]
        module.fail_json(msg="after %ss: " % p["timeout"] + "; ".join(lines), istiods=views)
    module.exit_json(changed=False, istiods=views)


if __name__ == "__main__":
    main()
