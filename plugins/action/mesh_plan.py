# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: validate the whole inventory and compute the mesh plan, before any cluster is touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.meshops.istio.plugins.module_utils import topology

# The variables the topology model reads; reading only these keeps other hostvars untemplated.
HOST_VARS = ('kube_context', 'kubeconfig', 'istio_cluster_id', 'istio_network', 'istio_api_server', 'istio_primary_cluster', 'istio_remote_pilot_address',
             'istio_mesh_id', 'istio_version', 'istio_install_method', 'istio_revision', 'istio_revision_tags', 'istio_system_namespace',
             'istio_allow_loopback_api_server', 'istio_token_type', 'istio_token_expiration', 'istio_gateway_api_version',
             'istio_gateway_api_crds', 'istio_platform')


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('model', 'cluster_facts', 'change', 'upgrade'))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        model = args.get('model')
        hostvars = task_vars['hostvars']
        groups = task_vars['groups']
        names = set(groups.get(topology.PRIMARY_GROUP, [])) | set(groups.get(topology.REMOTE_GROUP, []))
        hosts = {}
        for name in names:
            hv = hostvars[name]
            hosts[name] = dict((k, hv[k]) for k in HOST_VARS if k in hv)
        try:
            plan = topology.plan_mesh(hosts, dict(groups), model)
            facts_var = args.get('cluster_facts')
            if facts_var:
                # Preflight: what each cluster answered, registered under this variable name on every host.
                facts = dict((name, hostvars[name].get(facts_var) or {}) for name in plan['clusters'])
                topology.check_live(plan, facts)
            upgrade = args.get('upgrade')
            if upgrade:
                # A canary upgrade's stage, against what the clusters hold (see topology.plan_upgrade).
                if not facts_var:
                    raise AnsibleActionFail('mesh_plan: upgrade needs cluster_facts')
                upgrade = topology.plan_upgrade(plan, facts, upgrade)
            change = args.get('change')
            if change:
                # Adding or decommissioning one cluster: which one, and what the others get (see topology.plan_change).
                change = topology.plan_change(hosts, dict(groups), model, change.get('cluster'), change.get('operation'))
        except topology.MeshError as e:
            raise AnsibleActionFail('the inventory does not describe a valid %s mesh; nothing was changed:\n%s'
                                    % (model, e), result={'problems': [p._asdict() for p in e.problems]})
        for w in plan['warnings'] + (change['warnings'] if change else []):
            self._display.warning(w)
        facts = {'meshops_plan': plan}
        if change:
            facts['meshops_change'] = change
            result['change'] = change
        if upgrade:
            facts['meshops_upgrade'] = upgrade
            result['upgrade'] = upgrade
        result.update(changed=False, plan=plan, ansible_facts=facts,
                      msg='%s mesh %s: %d primaries, %d remotes, %d network(s)' % (
                          model, plan['mesh_id'], len(plan['primaries']), len(plan['remotes']), len(plan['networks'])))
        return result
