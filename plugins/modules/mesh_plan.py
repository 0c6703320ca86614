#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mesh_plan
short_description: Validate the mesh inventory and compute the plan every role follows
version_added: 0.1.0
description:
  - Reads the inventory (hosts in groups C(istio_primary) and C(istio_remote) are the clusters) and checks every rule
    of the chosen deployment model at once. Each problem names the host and the variable and says how to fix it;
    nothing is written to any cluster before this passes.
  - Returns the plan (per cluster, its role, network, which remote secrets it holds, whether it needs an east-west
    gateway and what it exposes, and the control-plane values) and sets it as the fact C(meshops_plan). Run it with
    C(run_once) so every host gets the same plan.
  - With O(cluster_facts), also checks what the clusters said, that is the M(meshops.istio.cluster_info) results
    registered under that name. Every unreachable or too old cluster and every API server URL that cannot go into
    a remote secret is reported together.
  - This is an action plugin; it runs on the controller and contacts no cluster.
author:
  - meshops.istio maintainers (@meshops)
options:
  model:
    description: The deployment model.
    type: str
    required: true
    choices: [multi_primary, primary_remote, ambient]
  cluster_facts:
    description: Name of the variable under which each cluster's M(meshops.istio.cluster_info) result is registered.
    type: str
  change:
    description:
      - Plan adding one cluster to a running mesh or decommissioning one, and set the fact C(meshops_change).
      - The cluster must be a host of the mesh in the inventory; the mesh without it must be valid as well. An add
        that would change the other clusters' install beyond remote secrets is refused.
    type: dict
    suboptions:
      cluster:
        description: Inventory hostname of the cluster.
        type: str
        required: true
      operation:
        description: What happens to it.
        type: str
        required: true
        choices: [add, decommission]
  upgrade:
    description:
      - Plan a stage of a canary upgrade (C(playbooks/upgrade.yml)) and set the fact C(meshops_upgrade); needs
        O(cluster_facts) read with C(proxies=true). Istio's skew rules and what each stage needs of the clusters are
        checked here, before any write (see C(plan_upgrade) in C(plugins/module_utils/topology.py)).
    type: dict
    suboptions:
      to:
        description: The Istio release to upgrade to (C(istio_upgrade_to)).
        type: str
        required: true
      revision:
        description: Its revision name (default the version with dashes, V(1-30-3)).
        type: str
      stage:
        description: The stage to run.
        type: str
        choices: [install, canary, promote, remove, rollback, all]
        default: all
      restart:
        description: Restart the workloads of the namespaces whose tag a stage moves.
        type: bool
        default: false
      stable_tag:
        description: The tag the workloads' namespaces use.
        type: str
        default: prod-stable
      canary_tag:
        description: The tag of the namespaces that try the new release first.
        type: str
        default: prod-canary
      charts:
        description: Where the new release's charts are (a directory or a chart repository URL).
        type: str
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
"""

EXAMPLES = r"""
- name: Plan the mesh (fails on a bad inventory, before any write)
  meshops.istio.mesh_plan:
    model: multi_primary
  run_once: true

- name: Plan adding the inventory host cluster3 to the running mesh
  meshops.istio.mesh_plan:
    model: multi_primary
    change:
      cluster: cluster3
      operation: add
  run_once: true
"""

RETURN = r"""
plan:
  description: The mesh plan, also set as the fact C(meshops_plan). Its shape is documented in C(plugins/module_utils/topology.py).
  returned: success
  type: dict
change:
  description:
    - With O(change), also set as the fact C(meshops_change) - C(operation), C(cluster), C(cluster_id), C(role),
      C(others), C(consumers) (hosts that hold or get its remote secret), C(consumes) (hosts whose remote secret it
      holds or gets), C(warnings).
  returned: success, with O(change)
  type: dict
upgrade:
  description: With O(upgrade), also set as the fact C(meshops_upgrade) - C(stage), C(from), C(to), C(steps), C(summary),
    C(inventory_after) (what the inventory must say once the upgrade is done).
  returned: success, with O(upgrade)
  type: dict
problems:
  description: Every problem found, each with C(host), C(field) and C(message).
  returned: failure
  type: list
  elements: dict
"""
