# -*- coding: utf-8 -*-
# Copyright: (c) 2025, meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time topology.plan_mesh on a synthetic 200-cluster inventory and print the figures (not a test).

10 primaries, 190 remotes, 5 networks, model primary_remote. Run from anywhere:

    python benchmarks/plan_200.py [runs]
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os
import sys
import time

PRIMARIES = 10
REMOTES = 190
NETWORKS = 5


def load_topology():
    # topology.py is standard-library only, so load it by path: no collection layout needed.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'plugins', 'module_utils', 'topology.py')
    spec = importlib.util.spec_from_file_location('topology', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_inventory():
    """(hosts, groups) like Ansible's hostvars and groups; remotes spread round-robin over primaries."""
    names = ['primary-%02d' % index for index in range(PRIMARIES)] + ['remote-%03d' % index for index in range(REMOTES)]
    hosts = {}
    for index, name in enumerate(names):
        hosts[name] = {
            'kube_context': 'ctx-' + name,
            'kubeconfig': '/etc/meshops/kubeconfig',
            'istio_network': 'network%d' % (index % NETWORKS + 1),
            'istio_api_server': 'https://10.%d.%d.1:6443' % (index // 250, index % 250),
            'istio_mesh_id': 'mesh1',
            'istio_version': '1.31.0',
            'istio_revision': '1-31-0',
        }
        if index >= PRIMARIES:
            hosts[name]['istio_primary_cluster'] = names[index % PRIMARIES]
    groups = {'all': list(names), 'istio_primary': names[:PRIMARIES], 'istio_remote': names[PRIMARIES:]}
    return hosts, groups


def main(runs):
    topology = load_topology()
    hosts, groups = synthetic_inventory()
    timings = []
    for _run in range(runs):
        started = time.perf_counter()
        plan = topology.plan_mesh(hosts, groups, 'primary_remote')
        timings.append(time.perf_counter() - started)
    timings.sort()
    secrets = sum(len(cluster['secrets_held']) for cluster in plan['clusters'].values())
    print('plan_mesh: %d clusters (%d primaries, %d remotes, %d networks), %d remote secrets, plan JSON %d bytes'
          % (len(plan['clusters']), len(plan['primaries']), len(plan['remotes']), len(plan['networks']), secrets, len(json.dumps(plan))))
    print('%d runs: min %.2f ms, median %.2f ms, max %.2f ms'
          % (runs, timings[0] * 1000, timings[len(timings) // 2] * 1000, timings[-1] * 1000))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
