#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mesh_report
short_description: Write the mesh report, an HTML page with a picture of the topology plus the same data as JSON
version_added: 0.2.0
description:
  - Turns the mesh plan and what the read-only modules returned for every cluster into C(mesh-report.json),
    C(topology.svg) and C(index.html) in O(dest) on the controller.
  - The picture groups clusters by network, tells primaries from remotes, shows each east-west gateway address, each
    istiod's sync status per cluster, and draws an arrow per remote secret (X holds a secret for Y) with the token's
    expiry. Legacy token Secrets' tokens do not expire, and the report says so.
  - Problems (unreachable clusters, istiods not synced, planned remote secrets missing, secrets for clusters not in
    the inventory, tokens expiring within 7 days) are listed in the page, in the JSON and as warnings.
  - This is an action plugin; it runs on the controller and contacts no cluster. It needs the Python package
    C(drawsvg) on the controller.
author:
  - meshops.istio maintainers (@meshops)
options:
  clusters:
    description:
      - Per inventory host, a dict of registered results. C(info) from M(meshops.istio.cluster_info), C(gateway) from
        M(meshops.istio.eastwest_gateway), C(istiod) from M(meshops.istio.istiod_status) and C(secrets) from
        M(meshops.istio.remote_secrets_info). Skipped or failed results count as absent.
    type: dict
    required: true
  plan:
    description: The mesh plan. Defaults to the fact C(meshops_plan) that M(meshops.istio.mesh_plan) sets.
    type: dict
  dest:
    description: Directory the report is written into, created if missing.
    type: path
    default: mesh-report
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is written; the report is still built and its problems are returned.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
requirements:
  - drawsvg (Python package, on the controller)
"""

EXAMPLES = r"""
- name: Write the report of the mesh
  meshops.istio.mesh_report:
    dest: ./mesh-report
    clusters: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'report_cluster'))) }}"
  run_once: true
"""

RETURN = r"""
dest:
  description: The report directory.
  returned: always
  type: str
files:
  description: Paths of the files, keyed C(index) (HTML page), C(topology) (SVG) and C(mesh_report) (JSON).
  returned: always
  type: dict
problems:
  description: What the report found wrong, one sentence each, naming the cluster.
  returned: always
  type: list
  elements: str
"""
