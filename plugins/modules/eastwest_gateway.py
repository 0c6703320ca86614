#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: eastwest_gateway
short_description: Make a cluster's east-west gateway usable by the mesh and return its address
version_added: 0.1.0
description:
  - Checks that the east-west gateway Service (installed by the C(istio/gateway) chart with C(networkGateway), or by
    an IstioOperator) carries the network label istiod looks for, and waits, up to O(wait_timeout) seconds, for
    its external address. A LoadBalancer address (IP or hostname), C(spec.externalIPs), or for a NodePort Service
    annotated C(traffic.istio.io/nodeSelector) the ExternalIP of a matching node, in that order; or the O(address)
    given.
  - Applies what exposes services and istiod through it, as Istio's samples do. C(cross-network-gateway)
    (AUTO_PASSTHROUGH on 15443 for C(*.local)) with O(expose_services), and C(istiod-gateway) plus the
    VirtualService C(istiod-vs) (or C(istiod-vs-<revision>)) with O(expose_istiod).
  - Objects that already match are not written. In check mode nothing is written, and a Service that does not exist
    yet gives an empty address instead of a wait.
  - With O(kind=gateway_api) (ambient mode), the gateway is instead the Gateway API C(Gateway) C(istio-eastwestgateway)
    of class C(istio-east-west), as C(samples/multicluster/gen-eastwest-gateway.sh --ambient) renders it (listener
    C(mesh), port 15008, protocol HBONE, TLS terminated with C(ISTIO_MUTUAL)), labelled with the network (and
    C(istio.io/rev) with O(revision)). The module applies it, then waits until it is C(Programmed=True) with an address
    in C(status.addresses), and returns that address. istiod creates the gateway's Deployment and Service (the class
    exists only when istiod runs with C(AMBIENT_ENABLE_MULTI_NETWORK=true)). Ambient east-west gateways carry only
    meshed HBONE traffic, so O(expose_services) and O(expose_istiod) do not apply.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  network:
    description: The network this gateway serves (C(topology.istio.io/network)).
    type: str
    required: true
  namespace:
    description: Namespace of the gateway (the Istio system namespace).
    type: str
    default: istio-system
  service:
    description: Name of the gateway Service (with O(kind=gateway_api), of the Gateway).
    type: str
    default: istio-eastwestgateway
  kind:
    description:
      - V(service) for a sidecar-mode gateway installed by a chart (the module finds its Service's address).
      - V(gateway_api) for the ambient east-west Gateway, which the module applies itself.
    type: str
    choices: [service, gateway_api]
    default: service
  revision:
    description:
      - The control plane revision whose istiod is exposed with O(expose_istiod), through its own VirtualService
        C(istiod-vs-<revision>) on the C(istiod-gateway) Gateway that every revision shares.
      - With O(kind=gateway_api), the revision whose istiod deploys the Gateway (label C(istio.io/rev)). Unset means
        the default revision, which serves Gateways without the label, so a label another revision left is removed.
    type: str
  expose_services:
    description:
      - Apply the C(cross-network-gateway) Gateway (multi-network meshes).
      - With O(state=absent), also remove it; every revision shares it, so leave this false when removing one revision
        while others stay.
    type: bool
    default: false
  expose_istiod:
    description: Apply C(istiod-gateway) and the istiod VirtualService (primary-remote meshes).
    type: bool
    default: false
  address:
    description:
      - Use this address instead of discovering one (for gateways behind an address Kubernetes does not know).
      - Not with O(kind=gateway_api), where istiod publishes the Gateway's C(status.addresses) to the other clusters.
    type: str
  wait_timeout:
    description: Seconds to wait for the gateway's address (with O(kind=gateway_api), for C(Programmed=True) and an address).
    type: int
    default: 120
  state:
    description:
      - V(absent) removes the revision's istiod VirtualService (and C(cross-network-gateway) with O(expose_services));
        the C(istiod-gateway) Gateway, shared by every revision, and the gateway itself, which belongs to its chart, stay.
      - With O(kind=gateway_api), V(absent) removes the Gateway (istiod then removes its Deployment and Service).
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Expose services through cluster1's east-west gateway and learn its address
  meshops.istio.eastwest_gateway:
    context: cluster1
    network: network1
    expose_services: true
  register: ew

- name: The address other networks reach cluster1 by
  ansible.builtin.debug:
    msg: "{{ ew.address }}"

- name: Ambient east-west gateway of cluster2 (Gateway API), once Programmed
  meshops.istio.eastwest_gateway:
    context: cluster2
    network: network2
    kind: gateway_api
    wait_timeout: 180
  register: ew2
"""

RETURN = r"""
address:
  description: The gateway's external address (empty in check mode when the gateway does not exist yet).
  returned: always
  type: str
  sample: 203.0.113.10
address_source:
  description: Where the address came from (V(gatewayStatus) for O(kind=gateway_api)).
  returned: always
  type: str
  sample: loadBalancer
port:
  description: The port other networks' traffic enters by (15008, HBONE, for O(kind=gateway_api)).
  returned: when O(kind=gateway_api)
  type: int
  sample: 15008
wait_seconds:
  description: How long the module waited for the Gateway to be Programmed with an address (0 when it already was).
  returned: when O(kind=gateway_api)
  type: float
  sample: 2.4
conditions:
  description: The Gateway's status conditions at the end (C(type), C(status), C(reason)).
  returned: when O(kind=gateway_api)
  type: list
  elements: dict
objects:
  description: The exposure objects and what was done to each.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Object kind.
      type: str
    namespace:
      description: Object namespace.
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create), V(patch), V(delete) or V(none).
      type: str
"""

import json
import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import gateway_api, kube

NETWORK_LABEL = "topology.istio.io/network"
NODE_SELECTOR_ANNOTATION = "traffic.istio.io/nodeSelector"
NETWORKING = "networking.istio.io/v1"
SELECTOR = {"istio": "eastwestgateway"}


def expose_services(namespace):
    return {"apiVersion": NETWORKING, "kind": "Gateway",
            "metadata": {"name": "cross-network-gateway", "namespace": namespace, "labels": dict(kube.MANAGED_BY)},
            "spec": {"selector": dict(SELECTOR), "servers": [
                {"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"},
                 "hosts": ["*.local"]}]}}


def expose_istiod(namespace, revision=None):
    """expose-istiod.yaml, or expose-istiod-rev.yaml.tmpl for a revision (shared Gateway, one VirtualService each)."""
    gateway = {"apiVersion": NETWORKING, "kind": "Gateway",
               "metadata": {"name": "istiod-gateway", "namespace": namespace, "labels": dict(kube.MANAGED_BY)},
               "spec": {"selector": dict(SELECTOR), "servers": [
                   {"port": {"name": "tls-istiod", "number": 15012, "protocol": "tls"}, "tls": {"mode": "PASSTHROUGH"},
                    "hosts": ["*"]},
                   {"port": {"name": "tls-istiodwebhook", "number": 15017, "protocol": "tls"},
                    "tls": {"mode": "PASSTHROUGH"}, "hosts": ["*"]}]}}
    svc = "istiod-%s" % revision if revision else "istiod"
    host = "%s.%s.svc.cluster.local" % (svc, namespace)
    sni = ["%s.%s.svc" % (svc, namespace), host] if revision else ["*"]
    vs = {"apiVersion": NETWORKING, "kind": "VirtualService",
          "metadata": {"name": "istiod-vs-%s" % revision if revision else "istiod-vs", "namespace": namespace,
                       "labels": dict(kube.MANAGED_BY)},
          "spec": {"hosts": ["*"], "gateways": ["istiod-gateway"], "tls": [
              {"match": [{"port": 15012, "sniHosts": sni}], "route": [{"destination": {"host": host, "port": {"number": 15012}}}]},
              {"match": [{"port": 15017, "sniHosts": sni}], "route": [{"destination": {"host": host, "port": {"number": 443}}}]}]}}
    return [gateway, vs]


def discover_address(k, svc):
    """(address, source) from a gateway Service, or (None, reason)."""
    status = (svc.get("status") or {}).get("loadBalancer") or {}
    for ingress in status.get("ingress") or []:
        if ingress.get("ip") or ingress.get("hostname"):
            return ingress.get("ip") or ingress.get("hostname"), "loadBalancer"
    spec = svc.get("spec") or {}
    if spec.get("externalIPs"):
        return spec["externalIPs"][0], "externalIPs"
    if spec.get("type") == "NodePort":
        raw = (svc["metadata"].get("annotations") or {}).get(NODE_SELECTOR_ANNOTATION)
        if not raw:
            return None, ("NodePort gateway without the %s annotation: istiod ignores it; annotate it with a node "
                          "selector such as '{\"kubernetes.io/os\": \"linux\"}'" % NODE_SELECTOR_ANNOTATION)
        selector = ",".join("%s=%s" % kv for kv in sorted(json.loads(raw).items()))
        for node in k.list("v1", "Node", label_selector=selector or None):
            for addr in (node.get("status") or {}).get("addresses") or []:
                if addr.get("type") == "ExternalIP":
                    return addr["address"], "nodePort"
        return None, "no node matching %s has an ExternalIP" % raw
    return None, "the LoadBalancer has no ingress address yet"


def gateway_api_main(module, k):
    """kind=gateway_api: apply the ambient east-west Gateway, wait until it is Programmed with an address."""
    p = module.params
    ns, name = p["namespace"], p["service"]
    api_version, kind = gateway_api.API_VERSION, "Gateway"
    if p["state"] == "absent":
        gone = k.delete(api_version, kind, name, ns, check_mode=module.check_mode)
        out = dict(changed=gone, address="", address_source="", port=gateway_api.HBONE_PORT, wait_seconds=0.0, conditions=[],
                   objects=[dict(kind=kind, namespace=ns, name=name, action="delete" if gone else "none")])
        if module._diff:
            out["diff"] = dict(before={kind + "/" + name: {"present": gone}}, after={kind + "/" + name: {"present": False}})
        module.exit_json(**out)
    if p["address"]:
        module.fail_json(msg="address cannot be used with kind=gateway_api: istiod tells the other clusters the address in the Gateway's "
                             "status.addresses; leave the address unset (istio_eastwest_address) for ambient meshes")
    if p["expose_services"] or p["expose_istiod"]:
        module.fail_json(msg="an ambient east-west gateway carries only meshed HBONE traffic: it cannot expose services with "
                             "AUTO_PASSTHROUGH nor istiod (use a sidecar-mode gateway, kind=service, for that)")
    desired = gateway_api.eastwest_gateway(ns, p["network"], p["revision"], labels=kube.MANAGED_BY)
    desired["metadata"]["name"] = name
    if not p["revision"]:
        # None: absent (item_subset); a revision's label would keep the Gateway with that revision, even one removed.
        desired["metadata"]["labels"][gateway_api.REVISION_LABEL] = None
    try:
        r = k.ensure(desired, check_mode=module.check_mode, item_subset=True)
    except kube.KubeError as e:
        module.fail_json(msg="%s/%s: %s (the Gateway API CRDs must be installed first)" % (ns, name, e))
    gateway = r["object"] if r["action"] != "create" or not module.check_mode else None
    started = time.time()
    ready, address, why = gateway_api.gateway_state(gateway)
    while not ready and not module.check_mode:
        if time.time() - started >= p["wait_timeout"]:
            hint = ""
            if k.get(api_version, "GatewayClass", gateway_api.EASTWEST_CLASS) is None:
                hint = ("; GatewayClass %s does not exist: istiod creates it only when it runs in ambient mode with "
                        "AMBIENT_ENABLE_MULTI_NETWORK=true" % gateway_api.EASTWEST_CLASS)
            module.fail_json(msg="Gateway %s/%s is not ready after %ss: %s%s" % (ns, name, p["wait_timeout"], why, hint),
                             conditions=conditions_of(gateway))
        time.sleep(0.5)
        gateway = k.get(api_version, kind, name, ns) or gateway
        ready, address, why = gateway_api.gateway_state(gateway)
    out = dict(changed=r["changed"], address=address if ready else "", address_source="gatewayStatus" if ready else why,
               port=gateway_api.HBONE_PORT, wait_seconds=round(time.time() - started, 1) if not module.check_mode else 0.0,
               conditions=conditions_of(gateway), objects=[dict(kind=kind, namespace=ns, name=name, action=r["action"])])
    if module._diff:
        out["diff"] = kube.diff_of([dict(r, key="%s/%s" % (kind, name))])
    module.exit_json(**out)


def conditions_of(obj):
    return [dict(type=c.get("type"), status=c.get("status"), reason=c.get("reason"))
            for c in ((obj or {}).get("status") or {}).get("conditions") or []]


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        network=dict(type="str", required=True),
        namespace=dict(type="str", default="istio-system"),
        service=dict(type="str", default="istio-eastwestgateway"),
        revision=dict(type="str"),
        expose_services=dict(type="bool", default=False),
        expose_istiod=dict(type="bool", default=False),
        address=dict(type="str"),
        wait_timeout=dict(type="int", default=120),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        kind=dict(type="str", choices=["service", "gateway_api"], default="service"),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    k = kube.Kube(**kube.auth_from_params(p))
    if p["kind"] == "gateway_api":
        gateway_api_main(module, k)
    ns = p["namespace"]
    wanted = ([expose_services(ns)] if p["expose_services"] else []) + (expose_istiod(ns, p["revision"]) if p["expose_istiod"] else [])
    results = []
    if p["state"] == "absent":
        # The revision's own VirtualService always; cross-network-gateway (shared by every revision) only when asked.
        for obj in ([expose_services(ns)] if p["expose_services"] else []) + [expose_istiod(ns, p["revision"])[1]]:
            gone = k.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], ns, check_mode=module.check_mode)
            results.append(dict(kind=obj["kind"], name=obj["metadata"]["name"], changed=gone, action="delete" if gone else "none",
                                key=obj["metadata"]["name"], before={"present": gone}, after={"present": False}))
        module.exit_json(changed=any(r["changed"] for r in results), address="", address_source="",
                         objects=[dict(kind=r["kind"], namespace=ns, name=r["name"], action=r["action"]) for r in results])

    address, source = p["address"], "given"
    svc = k.get("v1", "Service", p["service"], ns)
    if svc is None and not module.check_mode:
        module.fail_json(msg="Service %s/%s does not exist: install the east-west gateway first" % (ns, p["service"]))
    if svc is not None:
        label = (svc["metadata"].get("labels") or {}).get(NETWORK_LABEL)
        if label != p["network"]:
            module.fail_json(msg="Service %s/%s has %s=%r but this cluster's network is %r: istiod would not use it as "
                                 "the gateway of %s" % (ns, p["service"], NETWORK_LABEL, label, p["network"], p["network"]))
        deadline = time.time() + p["wait_timeout"]
        while not address:
            found, why = discover_address(k, svc)
            if found:
                address, source = found, why
                break
            if time.time() >= deadline or module.check_mode:
                if module.check_mode:
                    address, source = "", why
                    break
                module.fail_json(msg="east-west gateway %s/%s has no external address after %ss: %s"
                                     % (ns, p["service"], p["wait_timeout"], why))
            time.sleep(1)
            svc = k.get("v1", "Service", p["service"], ns) or svc
    else:
        address, source = address or "", source if address else "not installed yet (check mode)"

    for obj in wanted:
        r = k.ensure(obj, check_mode=module.check_mode)
        r.update(kind=obj["kind"], name=obj["metadata"]["name"], key="%s/%s" % (obj["kind"], obj["metadata"]["name"]))
        results.append(r)
    out = dict(changed=any(r["changed"] for r in results), address=address, address_source=source,
               objects=[dict(kind=r["kind"], namespace=ns, name=r["name"], action=r["action"]) for r in results])
    if module._diff:
        out["diff"] = kube.diff_of(results)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
