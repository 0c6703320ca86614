#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: network_label
short_description: Ensure Istio's system namespace exists and carries the cluster's network
version_added: 0.1.0
description:
  - Ensures the namespace exists with the label C(topology.istio.io/network=<network>), which istiod uses as
    the network of every workload without its own network label. Istio's docs ask for it before the control
    plane is installed.
  - Optionally sets further labels and annotations, such as C(topology.istio.io/controlPlaneClusters) on a
    remote cluster of a primary-remote mesh.
  - Labels and annotations not named here are left alone. A namespace that already matches gets no write.
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes
options:
  namespace:
    description: The Istio system namespace.
    type: str
    default: istio-system
  network:
    description: The network ID of this cluster.
    type: str
    required: true
  labels:
    description: Further labels to set on the namespace.
    type: dict
    default: {}
  annotations:
    description: Annotations to set on the namespace.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Label istio-system with the cluster's network
  meshops.istio.network_label:
    context: cluster2
    network: network2

- name: A remote cluster controlled by cluster1
  meshops.istio.network_label:
    context: cluster3
    network: network2
    annotations:
      topology.istio.io/controlPlaneClusters: cluster1
"""

RETURN = r"""
namespace:
  description: The namespace's labels and annotations after the run (as they would be, in check mode).
  returned: always
  type: dict
  contains:
    name:
      description: Namespace name.
      type: str
    labels:
      description: All labels of the namespace.
      type: dict
    annotations:
      description: All annotations of the namespace.
      type: dict
action:
  description: V(create), V(patch) or V(none).
  returned: always
  type: str
objects:
  description: The objects written (in check mode, that would be written); empty when nothing differs.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Object kind (V(Namespace)).
      type: str
    namespace:
      description: Object namespace (empty, a Namespace is cluster-scoped).
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create) or V(patch).
      type: str
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube

NETWORK_LABEL = "topology.istio.io/network"


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        network=dict(type="str", required=True),
        labels=dict(type="dict", default={}),
        annotations=dict(type="dict", default={}),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    labels = dict((k, str(v)) for k, v in p["labels"].items())
    labels[NETWORK_LABEL] = p["network"]
    metadata = {"name": p["namespace"], "labels": labels}
    if p["annotations"]:
        metadata["annotations"] = dict((k, str(v)) for k, v in p["annotations"].items())
    desired = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    try:
        result = kube.Kube(**kube.auth_from_params(p)).ensure(desired, check_mode=module.check_mode)
    except Exception as e:
        module.fail_json(msg="namespace %s: %s" % (p["namespace"], e))
    obj = result["object"]
    out = dict(changed=result["changed"], action=result["action"],
               objects=kube.written([kube.object_ref(desired, result["action"])]),
               namespace=dict(name=p["namespace"], labels=obj["metadata"].get("labels") or {},
                              annotations=obj["metadata"].get("annotations") or {}))
    if module._diff:
        out["diff"] = dict(before=result["before"] or {}, after=result["after"])
    module.exit_json(**out)


if __name__ == "__main__":
    main()
