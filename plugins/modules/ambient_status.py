#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ambient_status
short_description: Check a cluster's ambient data plane and east-west Gateway against its cluster ID and network
version_added: 0.1.0
description:
  - Reads, without writing anything, what an ambient multicluster member needs and checks it, waiting up to
    O(timeout) seconds until every check passes.
  - istiod (every C(app=istiod) Deployment, of O(revision) when given) runs with C(PILOT_ENABLE_AMBIENT=true),
    C(AMBIENT_ENABLE_MULTI_NETWORK=true) and C(CLUSTER_ID) equal to O(cluster_id), and is available.
  - The ztunnel DaemonSet carries C(ISTIO_META_CLUSTER_ID=<cluster_id>) and C(NETWORK=<network>), calls an istiod
    Service that exists (C(CA_ADDRESS), which names the revision ztunnel follows) and has every scheduled pod Ready;
    so has the istio-cni node agent DaemonSet (its chart has no cluster or network settings).
  - With O(eastwest_gateway), the GatewayClass C(istio-east-west) exists and the Gateway C(istio-eastwestgateway)
    has that class, the network label, C(Programmed=True) and an address in C(status.addresses), and the revision
    of its C(istio.io/rev) label (C(default) without one) has an istiod Deployment.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes.READ_ONLY
options:
  namespace:
    description: The Istio system namespace (istiod and the east-west Gateway; istio-cni and ztunnel too unless O(node_namespace) is set).
    type: str
    default: istio-system
  node_namespace:
    description:
      - Where the istio-cni and ztunnel DaemonSets run, when not in O(namespace) (C(kube-system) on OpenShift).
    type: str
    version_added: 0.2.0
  cluster_id:
    description: This cluster's Istio cluster ID.
    type: str
    required: true
  network:
    description: This cluster's network.
    type: str
    required: true
  revision:
    description: Only istiod Deployments of this revision (label C(istio.io/rev)).
    type: str
  eastwest_gateway:
    description: Also check the ambient east-west Gateway (meshes on several networks).
    type: bool
    default: false
  gateway:
    description: Name of the east-west Gateway.
    type: str
    default: istio-eastwestgateway
  ztunnel:
    description: Name of the ztunnel DaemonSet.
    type: str
    default: ztunnel
  cni:
    description: Name of the istio-cni node agent DaemonSet.
    type: str
    default: istio-cni-node
  timeout:
    description: Seconds to wait until every check passes. V(0) checks once.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: cluster2's ambient data plane and east-west gateway
  meshops.istio.ambient_status:
    context: cluster2
    cluster_id: cluster2
    network: network2
    eastwest_gateway: true
  register: ambient

- name: Show it
  ansible.builtin.debug:
    msg: "{{ ambient.summary }}"
"""

RETURN = r"""
checks:
  description: Every check and its outcome.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked.
      type: str
      sample: ztunnel
    ok:
      description: Whether it passed.
      type: bool
    detail:
      description: What was found.
      type: str
      sample: "ztunnel: 1/1 ready, ISTIO_META_CLUSTER_ID=cluster2 NETWORK=network2"
summary:
  description: One readable line.
  returned: always
  type: str
  sample: "cluster2: istiod ok, ztunnel ok, istio-cni ok, east-west gateway 127.32.0.11 Programmed"
"""

import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import gateway_api, kube


def env_of(workload, container=None):
    """name -> value of the plain env entries of a workload's (first, or named) container."""
    containers = (((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for c in containers:
        if container is None or c.get("name") == container:
            return dict((e.get("name"), e.get("value")) for e in c.get("env") or [] if "value" in e)
    return {}


def expect_env(env, wanted):
    """Problems with env compared with wanted (name -> value)."""
    return ["%s=%s (want %s)" % (name, env.get(name, "(unset)"), value) for name, value in sorted(wanted.items()) if env.get(name) != value]


def daemonset_check(name, ds, wanted_env):
    if ds is None:
        return dict(name=name, ok=False, detail="DaemonSet %s does not exist" % name)
    st = ds.get("status") or {}
    desired, ready, updated = st.get("desiredNumberScheduled") or 0, st.get("numberReady") or 0, st.get("updatedNumberScheduled") or 0
    problems = expect_env(env_of(ds), wanted_env)
    if desired == 0 or ready < desired or updated < desired:
        problems.append("%d/%d pods ready (%d updated)" % (ready, desired, updated))
    env = " ".join("%s=%s" % (n, env_of(ds).get(n)) for n in sorted(wanted_env))
    detail = "%s: %d/%d ready%s" % (name, ready, desired, ", " + env if env else "")
    return dict(name=name, ok=not problems, detail=detail + ("; " + "; ".join(problems) if problems else ""))


def missing_istiod_service(k, address):
    """A problem when address (istiod[-<rev>].<namespace>.svc:15012) names an istiod Service that does not exist."""
    parts = (address or "").rsplit(":", 1)[0].split(".")
    if len(parts) < 3 or parts[2] != "svc" or k.get("v1", "Service", parts[0], parts[1]) is not None:
        return ""
    return "its control plane %s.%s.svc (CA_ADDRESS) does not exist: the revision it follows is gone" % (parts[0], parts[1])


def observe(k, p):
    ns = p["namespace"]
    checks = []
    selector = "app=istiod" + (",istio.io/rev=%s" % p["revision"] if p["revision"] else "")
    deployments = k.list("apps/v1", "Deployment", namespace=ns, label_selector=selector)
    if not deployments:
        checks.append(dict(name="istiod", ok=False, detail="no istiod Deployment (%s) in %s" % (selector, ns)))
    for d in deployments:
        problems = expect_env(env_of(d, "discovery"), {"PILOT_ENABLE_AMBIENT": "true", "AMBIENT_ENABLE_MULTI_NETWORK": "true",
                                                       "CLUSTER_ID": p["cluster_id"]})
        available = [c for c in (d.get("status") or {}).get("conditions") or [] if c.get("type") == "Available"]
        if not available or available[0].get("status") != "True":
            problems.append("not Available")
        fine = "ambient, multi-network, CLUSTER_ID=%s, available" % p["cluster_id"]
        checks.append(dict(name="istiod", ok=not problems, detail="%s: %s" % (d["metadata"]["name"], "; ".join(problems) or fine)))
    node_ns = p["node_namespace"] or ns
    ztunnel = k.get("apps/v1", "DaemonSet", p["ztunnel"], node_ns)
    checks.append(daemonset_check("ztunnel", ztunnel, {"ISTIO_META_CLUSTER_ID": p["cluster_id"], "NETWORK": p["network"]}))
    if ztunnel is not None:
        # ztunnel follows one revision (the chart's revision value picks the istiod it calls): that istiod must exist.
        missing = missing_istiod_service(k, env_of(ztunnel).get("CA_ADDRESS"))
        if missing:
            checks[-1].update(ok=False, detail=checks[-1]["detail"] + "; " + missing)
    checks.append(daemonset_check("istio-cni", k.get("apps/v1", "DaemonSet", p["cni"], node_ns), {}))
    if p["eastwest_gateway"]:
        gw_class = k.get(gateway_api.API_VERSION, "GatewayClass", gateway_api.EASTWEST_CLASS)
        if gw_class is None:
            checks.append(dict(name="east-west gateway", ok=False, detail="GatewayClass %s does not exist (istiod serves it only with "
                                                                          "AMBIENT_ENABLE_MULTI_NETWORK=true)" % gateway_api.EASTWEST_CLASS))
        else:
            gw = k.get(gateway_api.API_VERSION, "Gateway", p["gateway"], ns)
            ready, address, why = gateway_api.gateway_state(gw)
            problems = [] if ready else [why]
            if gw is not None:
                label = (gw["metadata"].get("labels") or {}).get(gateway_api.NETWORK_LABEL)
                if label != p["network"]:
                    problems.append("label %s=%s (want %s)" % (gateway_api.NETWORK_LABEL, label, p["network"]))
                if (gw.get("spec") or {}).get("gatewayClassName") != gateway_api.EASTWEST_CLASS:
                    problems.append("class %s (want %s)" % (gw["spec"].get("gatewayClassName"), gateway_api.EASTWEST_CLASS))
                # Its status may predate the removal of the revision that deploys it: that istiod must still exist.
                revision = (gw["metadata"].get("labels") or {}).get(gateway_api.REVISION_LABEL) or "default"
                if not k.list("apps/v1", "Deployment", namespace=ns, label_selector="app=istiod,istio.io/rev=%s" % revision):
                    problems.append("revision %s, whose istiod deploys it, has no istiod in %s" % (revision, ns))
            checks.append(dict(name="east-west gateway", ok=not problems,
                               detail="%s %s" % (p["gateway"], "; ".join(problems) if problems else "Programmed, address %s" % address)))
    return checks


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        node_namespace=dict(type="str"),
        cluster_id=dict(type="str", required=True),
        network=dict(type="str", required=True),
        revision=dict(type="str"),
        eastwest_gateway=dict(type="bool", default=False),
        gateway=dict(type="str", default="istio-eastwestgateway"),
        ztunnel=dict(type="str", default="ztunnel"),
        cni=dict(type="str", default="istio-cni-node"),
        timeout=dict(type="int", default=60),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    k = kube.Kube(**kube.auth_from_params(p))
    deadline = time.time() + p["timeout"]
    while True:
        checks = observe(k, p)
        ok = all(c["ok"] for c in checks)
        if ok or time.time() >= deadline:
            break
        time.sleep(1)
    summary = "%s: %s" % (p["cluster_id"], ", ".join("%s %s" % (c["name"], "ok" if c["ok"] else "FAILED") for c in checks))
    if not ok:
        module.fail_json(msg="after %ss: %s" % (p["timeout"], "; ".join(c["detail"] for c in checks if not c["ok"])), checks=checks, summary=summary)
    module.exit_json(changed=False, checks=checks, summary=summary)


if __name__ == "__main__":
    main()
