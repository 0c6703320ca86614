# -*- coding: utf-8 -*-
# Copyright: (c) 2025, meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure topology model (no cluster, no mocks)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import random
import re
import time

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import topology
from ansible_collections.meshops.istio.plugins.module_utils.topology import MeshError, Problem, check_api_server, plan_mesh

UNSET = object()  # in hostvars overrides: drop the variable


def inventory(primaries=('c1', 'c2'), remotes=(), common=None, hostvars=None, extra_groups=None):
    """(hosts, groups) as Ansible gives them; every host gets kube_context kind-<name> unless overridden."""
    hostvars = hostvars or {}
    hosts = {}
    for name in list(primaries) + list(remotes):
        merged = {'kube_context': 'kind-' + name, 'ansible_connection': 'local'}
        merged.update(common or {})
        merged.update(hostvars.get(name, {}))
        hosts[name] = dict((key, value) for key, value in merged.items() if value is not UNSET)
    groups = {'all': sorted(hosts), 'ungrouped': [], 'istio_primary': list(primaries), 'istio_remote': list(remotes)}
    groups.update(extra_groups or {})
    return hosts, groups


def plan(model='multi_primary', **kwargs):
    hosts, groups = inventory(**kwargs)
    return plan_mesh(hosts, groups, model)


def problems_of(model='multi_primary', **kwargs):
    hosts, groups = inventory(**kwargs)
    with pytest.raises(MeshError) as excinfo:
        plan_mesh(hosts, groups, model)
    return excinfo.value


def two_networks():
    return {'c2': {'istio_network': 'network2'}}


# An Istio release whose Gateway API version the topology knows (1.30 pins v1.5.1).
AMBIENT = {'istio_version': '1.30.0'}


# --- the error table ----------------------------------------------------------------------------

# id, model, inventory kwargs, expected host (None = mesh), expected field, fragment of the message
ERRORS = [
    ('no-primary', 'primary_remote', dict(primaries=(), remotes=('r1',)), None, 'group', 'no host is in group istio_primary'),
    ('empty-inventory', 'multi_primary', dict(primaries=()), None, 'group', 'at least one primary'),
    ('unknown-model', 'multi-primary', {}, None, 'model', 'use one of multi_primary, primary_remote, ambient'),
    ('host-in-both-groups', 'primary_remote', dict(remotes=('c2',)), 'c2', 'group', 'is in both istio_primary and istio_remote'),
    ('kube-context-missing', 'multi_primary', dict(hostvars={'c2': {'kube_context': UNSET}}), 'c2', 'kube_context', 'it is not set'),
    ('kube-context-empty', 'multi_primary', dict(hostvars={'c2': {'kube_context': ''}}), 'c2', 'kube_context', "got str ''"),
    ('kube-context-blank', 'multi_primary', dict(hostvars={'c2': {'kube_context': '  '}}), 'c2', 'kube_context', 'non-empty'),
    ('kube-context-list', 'multi_primary', dict(hostvars={'c1': {'kube_context': ['kind-c1']}}), 'c1', 'kube_context', 'got list'),
    ('kubeconfig-type', 'multi_primary', dict(hostvars={'c1': {'kubeconfig': 42}}), 'c1', 'kubeconfig', 'must be a string, got int'),
    ('duplicate-context-default-kubeconfig', 'multi_primary', dict(hostvars={'c2': {'kube_context': 'kind-c1'}}),
     'c2', 'kube_context', "'kind-c1' in the default kubeconfig is already used by host c1"),
    ('duplicate-context-same-kubeconfig', 'multi_primary',
     dict(common={'kube_context': 'ctx'}, hostvars={'c1': {'kubeconfig': '/k/config'}, 'c2': {'kubeconfig': '/k/./config'}}),
     'c2', 'kube_context', "kubeconfig '/k/config' is already used by host c1"),
    ('duplicate-cluster-id', 'multi_primary', dict(hostvars={'c2': {'istio_cluster_id': 'c1'}}), 'c2', 'istio_cluster_id', "'c1' is already used by host c1"),
    ('cluster-id-invalid', 'multi_primary', dict(hostvars={'c1': {'istio_cluster_id': 'Bad_ID'}}), 'c1', 'istio_cluster_id',
     'set istio_cluster_id to e.g. bad-id'),
    ('cluster-id-too-long', 'multi_primary', dict(hostvars={'c1': {'istio_cluster_id': 'a' * 64}}), 'c1', 'istio_cluster_id', 'at most 63 characters'),
    ('cluster-id-trailing-newline', 'multi_primary', dict(hostvars={'c1': {'istio_cluster_id': 'c1\n'}}), 'c1', 'istio_cluster_id', 'not a valid cluster ID'),
    ('cluster-id-leading-dash', 'multi_primary', dict(hostvars={'c1': {'istio_cluster_id': '-c1'}}), 'c1', 'istio_cluster_id', 'not a valid cluster ID'),
    ('cluster-id-type', 'multi_primary', dict(hostvars={'c1': {'istio_cluster_id': 7}}), 'c1', 'istio_cluster_id', 'must be a string, got int'),
    ('hostname-as-cluster-id', 'multi_primary', dict(primaries=('Cluster_1', 'c2')), 'Cluster_1', 'istio_cluster_id',
     "inventory hostname 'Cluster_1', used as the default cluster ID, is not a DNS-1123 label"),
    ('network-invalid', 'multi_primary', dict(hostvars={'c2': {'istio_network': 'Net 1'}}), 'c2', 'istio_network', 'set istio_network to e.g. network1'),
    ('network-too-long', 'multi_primary', dict(hostvars={'c2': {'istio_network': 'n' * 64}}), 'c2', 'istio_network', 'not a valid network name'),
    ('network-type', 'multi_primary', dict(hostvars={'c2': {'istio_network': 2}}), 'c2', 'istio_network', 'must be a string, got int'),
    ('mesh-id-invalid', 'multi_primary', dict(common={'istio_mesh_id': 'Mesh 1'}), None, 'istio_mesh_id', 'set istio_mesh_id to e.g. mesh-1'),
    ('mesh-id-type', 'multi_primary', dict(common={'istio_mesh_id': ['mesh1']}), None, 'istio_mesh_id', 'must be a string, got list'),
    ('mesh-var-differs', 'multi_primary', dict(hostvars={'c2': {'istio_mesh_id': 'other'}}), 'c2', 'istio_mesh_id',
     "'other' differs from (unset) on host c1"),
    ('mesh-var-differs-version', 'multi_primary', dict(hostvars={'c1': {'istio_version': '1.30.0'}, 'c2': {'istio_version': '1.31.0'}}),
     'c2', 'istio_version', "'1.31.0' differs from '1.30.0' on host c1"),
    ('mesh-var-differs-first-only', 'multi_primary',
     dict(primaries=('c1', 'c2', 'c3'), hostvars={'c2': {'istio_revision': 'a'}, 'c3': {'istio_revision': 'b'}}),
     'c2', 'istio_revision', 'differs from (unset) on host c1'),
    ('install-method', 'multi_primary', dict(common={'istio_install_method': 'kubectl'}), None, 'istio_install_method', 'not one of helm, istioctl'),
    ('revision-invalid', 'multi_primary', dict(common={'istio_revision': '1.31.0'}), None, 'istio_revision', 'set istio_revision to e.g. 1-31-0'),
    ('revision-default', 'multi_primary', dict(common={'istio_revision': 'default'}), None, 'istio_revision', "'default' is reserved"),
    ('remote-profile-too-old', 'primary_remote', dict(primaries=('c1',), remotes=('r1',), common={'istio_version': '1.23.6'}), None,
     'istio_version', "1.23.6 is too old for remotes: they get the istiod chart's remote profile, which exists from 1.24 on"),
    ('revision-ambient-istioctl', 'ambient', dict(common=dict(AMBIENT, istio_revision='canary', istio_install_method='istioctl'),
                                                  hostvars=two_networks()), None, 'istio_revision', 'use istio_install_method: helm'),
    ('namespace-invalid', 'multi_primary', dict(common={'istio_system_namespace': 'Istio_System'}), None, 'istio_system_namespace',
     'set istio_system_namespace to e.g. istio-system'),
    ('api-server-http', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': 'http://203.0.113.1:6443'}}), 'c1', 'istio_api_server', 'must use https'),
    ('api-server-no-scheme', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': '203.0.113.1:6443'}}), 'c1', 'istio_api_server', 'https'),
    ('api-server-loopback', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': 'https://127.0.0.1:6443'}}), 'c1', 'istio_api_server',
     'istio_allow_loopback_api_server: true'),
    ('api-server-localhost', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': 'https://localhost:6443'}}), 'c1', 'istio_api_server', 'loopback'),
    ('api-server-no-host', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': 'https://:6443'}}), 'c1', 'istio_api_server', 'has no host'),
    ('api-server-type', 'multi_primary', dict(hostvars={'c1': {'istio_api_server': ['https://a']}}), 'c1', 'istio_api_server', 'must be a string'),
    ('allow-loopback-not-bool', 'multi_primary', dict(common={'istio_allow_loopback_api_server': 'maybe'}), None, 'istio_allow_loopback_api_server',
     'set istio_allow_loopback_api_server to true or false'),
    ('allow-loopback-int', 'multi_primary', dict(common={'istio_allow_loopback_api_server': 1}), None, 'istio_allow_loopback_api_server', 'not a boolean'),
    ('remote-needs-primary', 'primary_remote', dict(remotes=('r1',)), 'r1', 'istio_primary_cluster', 'several primaries (c1, c2)'),
    ('primary-cluster-unknown', 'primary_remote', dict(remotes=('r1',), hostvars={'r1': {'istio_primary_cluster': 'nope'}}), 'r1', 'istio_primary_cluster',
     "'nope' is neither the inventory hostname nor the cluster ID"),
    ('primary-cluster-is-remote', 'primary_remote', dict(primaries=('c1',), remotes=('r1', 'r2'), hostvars={'r1': {'istio_primary_cluster': 'r2'}}),
     'r1', 'istio_primary_cluster', "'r2' is host r2, a remote"),
    ('primary-cluster-is-remote-by-id', 'primary_remote',
     dict(primaries=('c1',), remotes=('r1', 'r2'), hostvars={'r2': {'istio_cluster_id': 'east'}, 'r1': {'istio_primary_cluster': 'east'}}),
     'r1', 'istio_primary_cluster', "'east' is host r2, a remote"),
    ('primary-cluster-on-primary', 'primary_remote', dict(hostvars={'c1': {'istio_primary_cluster': 'c2'}}), 'c1', 'istio_primary_cluster', 'only remotes'),
    ('primary-cluster-type', 'primary_remote', dict(primaries=('c1',), remotes=('r1',), hostvars={'r1': {'istio_primary_cluster': ['c1']}}),
     'r1', 'istio_primary_cluster', 'must be a string, got list'),
    ('remote-in-multi-primary', 'multi_primary', dict(remotes=('r1',)), 'r1', 'group', 'use playbooks/primary-remote.yml'),
    ('remote-in-ambient', 'ambient', dict(remotes=('r1',), common=AMBIENT, hostvars=two_networks()), 'r1', 'group',
     'Istio ambient multicluster supports multi-primary only'),
    ('ambient-too-old', 'ambient', dict(common={'istio_version': '1.26.3'}, hostvars=two_networks()), None, 'istio_version',
     'set istio_version to 1.27.0 or later'),
    ('ambient-gateway-api-unknown-release', 'ambient', dict(common={'istio_version': '1.31.0'}, hostvars=two_networks()), None,
     'istio_gateway_api_crds', "Istio 1.31.0 is not in this collection's table of Gateway API versions (Istio 1.27, 1.28, 1.29, 1.30)"),
    ('ambient-gateway-api-no-istio-version', 'ambient', dict(hostvars=two_networks()), None, 'istio_gateway_api_crds', 'istio_version is not set'),
    ('gateway-api-version-invalid', 'ambient', dict(common=dict(AMBIENT, istio_gateway_api_version='latest'), hostvars=two_networks()), None,
     'istio_gateway_api_version', 'set istio_gateway_api_version to e.g. v1.5.1'),
    ('gateway-api-version-float', 'ambient', dict(common=dict(AMBIENT, istio_gateway_api_version=1.5), hostvars=two_networks()), None,
     'istio_gateway_api_version', "quote it, e.g. istio_gateway_api_version: 'v1.5.1'"),
    ('gateway-api-version-too-old', 'ambient', dict(common=dict(AMBIENT, istio_gateway_api_version='v0.8.1'), hostvars=two_networks()), None,
     'istio_gateway_api_version', 'served from Gateway API v1.0.0 on; set istio_gateway_api_version to the version Istio pins (v1.5.1)'),
    ('gateway-api-crds-relative', 'ambient', dict(common=dict(AMBIENT, istio_gateway_api_crds='crds/standard'), hostvars=two_networks()), None,
     'istio_gateway_api_crds', 'relative path'),
    ('gateway-api-crds-scheme', 'ambient',
     dict(common=dict(AMBIENT, istio_gateway_api_crds='git://github.com/kubernetes-sigs/gateway-api'), hostvars=two_networks()), None,
     'istio_gateway_api_crds', 'kubectl kustomize <source> > crds.yaml'),
    ('gateway-api-crds-differ', 'ambient', dict(common=AMBIENT, hostvars={'c1': {'istio_gateway_api_crds': '/a'},
                                                                          'c2': {'istio_network': 'network2', 'istio_gateway_api_crds': '/b'}}),
     'c2', 'istio_gateway_api_crds', "'/b' differs from '/a' on host c1"),
    ('version-unparsable', 'multi_primary', dict(common={'istio_version': 'latest'}), None, 'istio_version', 'X.Y[.Z][-suffix]'),
    ('version-v-prefix', 'multi_primary', dict(common={'istio_version': 'v1.31.0'}), None, 'istio_version', 'not an Istio version'),
    ('version-float', 'multi_primary', dict(common={'istio_version': 1.3}), None, 'istio_version', "quote it, e.g. istio_version: '1.31.0'"),
    ('token-type', 'multi_primary', dict(common={'istio_token_type': 'jwt'}), None, 'istio_token_type', 'not one of secret, token_request'),
    ('token-expiration-short', 'multi_primary', dict(common={'istio_token_type': 'token_request', 'istio_token_expiration': 599}),
     None, 'istio_token_expiration', 'at least 600'),
    ('token-expiration-text', 'multi_primary', dict(common={'istio_token_type': 'token_request', 'istio_token_expiration': '30d'}),
     None, 'istio_token_expiration', 'not a whole number of seconds'),
    ('token-expiration-bool', 'multi_primary', dict(common={'istio_token_type': 'token_request', 'istio_token_expiration': True}),
     None, 'istio_token_expiration', 'not a whole number of seconds'),
    ('token-expiration-float', 'multi_primary', dict(common={'istio_token_type': 'token_request', 'istio_token_expiration': 3600.5}),
     None, 'istio_token_expiration', 'not a whole number of seconds'),
]

FIX_VERB = re.compile(r'\b(set|use|remove|add|move|point|quote|write|give|leave)\b')


@pytest.mark.parametrize('model, kwargs, host, field, fragment', [row[1:] for row in ERRORS], ids=[row[0] for row in ERRORS])
def test_error_table(model, kwargs, host, field, fragment):
    err = problems_of(model, **kwargs)
    # Exactly one problem: one mistake must not cascade into follow-up noise.
    assert len(err.problems) == 1, str(err)
    problem = err.problems[0]
    assert (problem.host, problem.field) == (host, field)
    assert fragment in problem.message
    assert FIX_VERB.search(problem.message), 'message does not say how to fix it: ' + problem.message
    where = 'mesh' if host is None else 'host %s' % host
    assert str(err) == '%s: %s: %s' % (where, field, problem.message)


def test_error_table_covers_enough_kinds():
    assert len(set((row[3] is None, row[4], row[5]) for row in ERRORS)) >= 25


def test_network_message_is_exact():
    err = problems_of(hostvars={'c2': {'istio_network': 'Net 1'}})
    assert str(err) == ("host c2: istio_network: 'Net 1' is not a valid network name (lower-case letters, digits, '-', '_' and '.', "
                        "at most 63 characters, starting and ending with a letter or digit); set istio_network to e.g. network1")


def test_all_problems_are_collected():
    err = problems_of(
        primaries=('Cluster_1', 'c2', 'c3'),
        common={'istio_install_method': 'kubectl', 'istio_token_type': 'jwt'},
        hostvars={'c2': {'kube_context': None, 'istio_network': 'Net 1'}, 'c3': {'istio_api_server': 'http://x'}},
    )
    rendered = str(err).splitlines()
    assert len(rendered) == len(err.problems) == 6
    assert set((p.host, p.field) for p in err.problems) == {
        (None, 'istio_install_method'), (None, 'istio_token_type'), ('Cluster_1', 'istio_cluster_id'),
        ('c2', 'kube_context'), ('c2', 'istio_network'), ('c3', 'istio_api_server'),
    }


def test_every_remote_with_a_bad_primary_is_reported():
    err = problems_of('primary_remote', remotes=('r1', 'r2', 'r3'))
    assert [p.host for p in err.problems] == ['r1', 'r2', 'r3']


def test_remote_in_wrong_model_is_not_also_asked_for_a_primary():
    err = problems_of('multi_primary', remotes=('r1',), hostvars={'r1': {'istio_primary_cluster': 'nope'}})
    assert [(p.host, p.field) for p in err.problems] == [('r1', 'group')]


def test_problem_rendering():
    assert str(Problem(None, 'istio_mesh_id', 'bad')) == 'mesh: istio_mesh_id: bad'
    assert str(Problem('c1', 'kube_context', 'bad')) == 'host c1: kube_context: bad'
    err = MeshError([Problem('c1', 'a', 'x'), Problem(None, 'b', 'y')])
    assert isinstance(err, Exception)
    assert str(err) == 'host c1: a: x\nmesh: b: y'


# --- accepted inputs ----------------------------------------------------------------------------

def test_hosts_outside_the_mesh_groups_are_ignored():
    hosts, groups = inventory()
    hosts['bastion'] = {'kube_context': ['nonsense'], 'istio_network': 'Not Valid', 'istio_mesh_id': 'other'}
    groups['all'].append('bastion')
    result = plan_mesh(hosts, groups, 'multi_primary')
    assert sorted(result['clusters']) == ['c1', 'c2']


def test_missing_remote_group_is_fine():
    hosts, groups = inventory()
    del groups['istio_remote']
    assert plan_mesh(hosts, groups, 'multi_primary')['remotes'] == []


def test_same_context_in_different_kubeconfigs_is_fine():
    result = plan(common={'kube_context': 'admin'}, hostvars={'c1': {'kubeconfig': '/k/one'}, 'c2': {'kubeconfig': '/k/two'}})
    assert result['clusters']['c1']['kubeconfig'] == '/k/one'
    assert result['clusters']['c2']['context'] == 'admin'


@pytest.mark.parametrize('flag', [True, 'true', 'True', 'yes', 'YES'])
def test_loopback_api_server_allowed_with_flag(flag):
    result = plan(common={'istio_allow_loopback_api_server': flag}, hostvars={'c1': {'istio_api_server': 'https://127.0.0.1:6443'}})
    assert result['allow_loopback_api_server'] is True
    assert result['clusters']['c1']['api_server'] == 'https://127.0.0.1:6443'


@pytest.mark.parametrize('flag', [False, 'false', 'no', 'No'])
def test_false_loopback_flags(flag):
    assert plan(common={'istio_allow_loopback_api_server': flag})['allow_loopback_api_server'] is False


def test_non_loopback_api_server_needs_no_flag():
    result = plan(hostvars={'c2': {'istio_api_server': 'https://203.0.113.7:6443'}})
    assert result['clusters']['c2']['api_server'] == 'https://203.0.113.7:6443'
    assert result['clusters']['c1']['api_server'] is None


@pytest.mark.parametrize('version', ['1.27.0', '1.27', '1.31.0-alpha.xyz', '1.28.1'])
def test_ambient_accepts_supported_versions(version):
    common = {'istio_version': version, 'istio_gateway_api_version': 'v1.5.1'}
    assert plan('ambient', common=common, hostvars=two_networks())['version'] == version


@pytest.mark.parametrize('value', [None, ''])
def test_empty_optional_strings_mean_unset(value):
    result = plan(common={'kubeconfig': value, 'istio_revision': value, 'istio_version': value, 'istio_cluster_id': value,
                          'istio_network': value, 'istio_api_server': value, 'istio_install_method': value})
    c1 = result['clusters']['c1']
    assert (c1['kubeconfig'], c1['api_server'], c1['cluster_id'], c1['network']) == (None, None, 'c1', 'network1')
    assert (result['revision'], result['version'], result['install_method']) == ('', None, 'helm')


def test_token_request_settings():
    result = plan(common={'istio_token_type': 'token_request', 'istio_token_expiration': '3600'})
    assert result['token'] == {'type': 'token_request', 'expiration': 3600}
    assert result['warnings'] == []


def test_token_expiration_with_secret_type_warns():
    result = plan(common={'istio_token_expiration': 7200})
    assert result['token'] == {'type': 'secret', 'expiration': 7200}
    assert len(result['warnings']) == 1
    assert 'istio_token_type: token_request' in result['warnings'][0]


def test_primary_cluster_by_cluster_id():
    result = plan('primary_remote', remotes=('r1',), hostvars={'c2': {'istio_cluster_id': 'west'}, 'r1': {'istio_primary_cluster': 'west'}})
    assert result['clusters']['r1']['primary'] == 'c2'
    assert result['clusters']['r1']['namespace_annotations'] == {topology.CONTROL_PLANE_CLUSTERS_ANNOTATION: 'west'}
    assert result['clusters']['c2']['remotes'] == ['r1']


def test_primary_cluster_hostname_wins_over_cluster_id():
    # c1's cluster ID is 'c2'; 'c2' names the host c2 first.
    result = plan('primary_remote', remotes=('r1',), hostvars={'c1': {'istio_cluster_id': 'c2'}, 'c2': {'istio_cluster_id': 'c1'},
                                                               'r1': {'istio_primary_cluster': 'c2'}})
    assert result['clusters']['r1']['primary'] == 'c2'


# --- check_api_server ---------------------------------------------------------------------------

@pytest.mark.parametrize('url', [
    'https://203.0.113.10:6443', 'https://api.example.com', 'HTTPS://api.example.com:443/', 'https://[2001:db8::1]:6443', 'https://10.0.0.1',
])
def test_api_server_valid(url):
    assert check_api_server(url, False) is None


@pytest.mark.parametrize('url, fragment', [
    ('http://api.example.com', 'must use https'),
    ('api.example.com:6443', 'must use https'),
    ('https://', 'has no host'),
    ('https://:6443', 'has no host'),
    ('https://127.0.0.1:6443', 'loopback'),
    ('https://127.42.0.9', 'loopback'),
    ('https://localhost', 'loopback'),
    ('https://LOCALHOST.:6443', 'loopback'),
    ('https://api.localhost', 'loopback'),
    ('https://[::1]:6443', 'loopback'),
    ('https://[::ffff:127.0.0.1]:6443', 'loopback'),
    ('https://0.0.0.0:6443', 'loopback'),
    ('https://[::]:6443', 'loopback'),
    ('https://api.example.com:99999', 'not a valid URL'),
    ('https://api.example.com:0', 'has port 0'),
    ('https://api.example.com:port', 'not a valid URL'),
    ('https://[::1', 'not a valid URL'),
    ('', 'non-empty https URL'),
    (None, 'non-empty https URL'),
    (42, 'non-empty https URL'),
])
def test_api_server_invalid(url, fragment):
    message = check_api_server(url, False)
    assert message is not None and fragment in message


@pytest.mark.parametrize('url', ['https://127.0.0.1:6443', 'https://localhost:6443', 'https://[::1]:6443', 'https://0.0.0.0'])
def test_api_server_loopback_allowed(url):
    assert check_api_server(url, True) is None


def test_api_server_allow_loopback_does_not_allow_http():
    assert 'https' in check_api_server('http://127.0.0.1:6443', True)


# --- small public helpers -----------------------------------------------------------------------

def test_names():
    assert topology.NETWORK_LABEL == 'topology.istio.io/network'
    assert topology.CONTROL_PLANE_CLUSTERS_ANNOTATION == 'topology.istio.io/controlPlaneClusters'
    assert topology.MULTICLUSTER_LABEL == 'istio/multiCluster'
    assert topology.READER_SERVICE_ACCOUNT == 'istio-reader-service-account'
    assert topology.remote_secret_name('cluster2') == 'istio-remote-secret-cluster2'


@pytest.mark.parametrize('text, expected', [
    ('1.31.0', (1, 31, 0)), ('1.27', (1, 27, 0)), ('1.31.0-alpha.xyz', (1, 31, 0)), ('1.9.10', (1, 9, 10)),
    ('v1.31.0', None), ('1', None), ('1.31.0-', None), ('latest', None), ('1.31.0\n', None), (None, None), (1.31, None),
])
def test_parse_version(text, expected):
    assert topology.parse_version(text) == expected


# --- plans --------------------------------------------------------------------------------------

def test_multi_primary_one_network():
    result = plan()
    assert result['multi_network'] is False
    assert result['networks'] == {'network1': ['c1', 'c2']}
    assert (result['primaries'], result['remotes'], result['warnings']) == (['c1', 'c2'], [], [])
    for name, other in (('c1', 'c2'), ('c2', 'c1')):
        cluster = result['clusters'][name]
        assert (cluster['eastwest_gateway'], cluster['expose_services'], cluster['expose_istiod']) == (False, False, False)
        assert cluster['secret_consumers'] == [other]
        assert cluster['secrets_held'] == [other]
        assert (cluster['primary'], cluster['remotes']) == (None, [])
        assert cluster['namespace_labels'] == {'topology.istio.io/network': 'network1'}
        assert cluster['namespace_annotations'] == {}
        assert cluster['install'] == {
            'profile': 'default',
            'base': {},
            'istiod': {'global': {'meshID': 'mesh1', 'multiCluster': {'clusterName': name}, 'network': 'network1'}},
            'cni': None,
            'ztunnel': None, 'node_namespace': 'istio-system',
        }


def test_multi_primary_two_networks():
    result = plan(hostvars=two_networks())
    assert result['multi_network'] is True
    assert result['networks'] == {'network1': ['c1'], 'network2': ['c2']}
    for name in ('c1', 'c2'):
        cluster = result['clusters'][name]
        assert (cluster['eastwest_gateway'], cluster['expose_services'], cluster['expose_istiod']) == (True, True, False)
    assert result['clusters']['c2']['namespace_labels'] == {'topology.istio.io/network': 'network2'}
    assert result['clusters']['c2']['install']['istiod']['global']['network'] == 'network2'
    assert result['clusters']['c1']['secrets_held'] == ['c2']
    assert result['clusters']['c2']['secrets_held'] == ['c1']


def test_primary_remote_one_network():
    result = plan('primary_remote', primaries=('c1',), remotes=('c2',))
    primary, remote = result['clusters']['c1'], result['clusters']['c2']
    assert result['multi_network'] is False
    assert (result['primaries'], result['remotes']) == (['c1'], ['c2'])

    assert (primary['eastwest_gateway'], primary['expose_services'], primary['expose_istiod']) == (True, False, True)
    assert (remote['eastwest_gateway'], remote['expose_services'], remote['expose_istiod']) == (False, False, False)
    assert (primary['role'], primary['remotes'], primary['primary']) == ('primary', ['c2'], None)
    assert (remote['role'], remote['remotes'], remote['primary']) == ('remote', [], 'c1')

    assert remote['namespace_annotations'] == {'topology.istio.io/controlPlaneClusters': 'c1'}
    assert primary['namespace_annotations'] == {}
    assert (primary['secrets_held'], primary['secret_consumers']) == (['c2'], [])
    assert (remote['secrets_held'], remote['secret_consumers']) == ([], ['c1'])

    assert primary['install'] == {
        'profile': 'default',
        'base': {'global': {'externalIstiod': True}},
        'istiod': {'global': {'meshID': 'mesh1', 'multiCluster': {'clusterName': 'c1'}, 'network': 'network1', 'externalIstiod': True}},
        'cni': None,
        'ztunnel': None, 'node_namespace': 'istio-system',
    }
    assert remote['install'] == {
        'profile': 'remote',
        'base': {'profile': 'remote'},
        'istiod': {
            'profile': 'remote',
            'global': {'meshID': 'mesh1', 'multiCluster': {'clusterName': 'c2'}, 'network': 'network1',
                       'configCluster': True, 'remotePilotAddress': None},
            'istiodRemote': {'injectionPath': '/inject/cluster/c2/net/network1'},
        },
        'cni': None,
        'ztunnel': None, 'node_namespace': 'istio-system',
    }


def test_primary_remote_multi_network():
    result = plan('primary_remote', primaries=('c1',), remotes=('c2',), hostvars=two_networks())
    primary, remote = result['clusters']['c1'], result['clusters']['c2']
    assert result['multi_network'] is True
    assert (primary['eastwest_gateway'], primary['expose_services'], primary['expose_istiod']) == (True, True, True)
    # The remote needs its own gateway for cross-network traffic but exposes nothing: it reads config from the primary.
    assert (remote['eastwest_gateway'], remote['expose_services'], remote['expose_istiod']) == (True, False, False)
    assert remote['install']['istiod']['istiodRemote'] == {'injectionPath': '/inject/cluster/c2/net/network2'}
    assert remote['namespace_labels'] == {'topology.istio.io/network': 'network2'}
    assert primary['secrets_held'] == ['c2'] and remote['secrets_held'] == []


def test_mixed_three_clusters():
    result = plan('primary_remote', primaries=('c1', 'c2'), remotes=('c3',),
                  hostvars={'c2': {'istio_network': 'network2'}, 'c3': {'istio_network': 'network2', 'istio_primary_cluster': 'c2'}})
    c1, c2, c3 = (result['clusters'][name] for name in ('c1', 'c2', 'c3'))
    assert result['networks'] == {'network1': ['c1'], 'network2': ['c2', 'c3']}
    assert c1['secrets_held'] == ['c2', 'c3']
    assert c2['secrets_held'] == ['c1', 'c3']
    assert c3['secrets_held'] == []
    assert c3['secret_consumers'] == ['c1', 'c2']
    assert (c1['secret_consumers'], c2['secret_consumers']) == (['c2'], ['c1'])
    assert (c1['remotes'], c2['remotes'], c3['primary']) == ([], ['c3'], 'c2')
    assert (c1['expose_istiod'], c2['expose_istiod'], c3['expose_istiod']) == (False, True, False)
    assert 'externalIstiod' not in c1['install']['istiod']['global'] and c1['install']['base'] == {}
    assert c2['install']['istiod']['global']['externalIstiod'] is True
    assert c3['namespace_annotations'] == {'topology.istio.io/controlPlaneClusters': 'c2'}
    assert all(cluster['eastwest_gateway'] for cluster in (c1, c2, c3))
    assert (c1['expose_services'], c2['expose_services'], c3['expose_services']) == (True, True, False)


def test_ambient_two_networks():
    result = plan('ambient', common={'istio_version': '1.30.0'}, hostvars=two_networks())
    assert (result['model'], result['multi_network'], result['warnings']) == ('ambient', True, [])
    for name, network, other in (('c1', 'network1', 'c2'), ('c2', 'network2', 'c1')):
        cluster = result['clusters'][name]
        assert (cluster['eastwest_gateway'], cluster['expose_services'], cluster['expose_istiod']) == (True, False, False)
        assert cluster['secrets_held'] == [other] and cluster['secret_consumers'] == [other]
        assert cluster['install'] == {
            'profile': 'ambient',
            'base': {},
            'istiod': {'profile': 'ambient', 'env': {'AMBIENT_ENABLE_MULTI_NETWORK': 'true'},
                       'global': {'meshID': 'mesh1', 'multiCluster': {'clusterName': name}, 'network': network}},
            'cni': {'profile': 'ambient'},
            'ztunnel': {'multiCluster': {'clusterName': name}, 'global': {'network': network}}, 'node_namespace': 'istio-system',
        }


def test_remotes_from_istio_1_24_and_primaries_alone_at_any_version():
    assert plan('primary_remote', primaries=('c1',), remotes=('r1',), common={'istio_version': '1.24.0'})['clusters']['r1']['role'] == 'remote'
    assert plan('multi_primary', common={'istio_version': '1.23.6'})['version'] == '1.23.6'


def test_ambient_with_istioctl_plans_the_same_install():
    helm = plan('ambient', common=AMBIENT, hostvars=two_networks())
    istioctl = plan('ambient', common=dict(AMBIENT, istio_install_method='istioctl'), hostvars=two_networks())
    assert (istioctl['install_method'], istioctl['warnings']) == ('istioctl', [])
    # istioctl installs istio-cni and ztunnel as IstioOperator components, from the same planned chart values.
    assert istioctl['clusters'] == helm['clusters']


@pytest.mark.parametrize('istio, pinned', [('1.27.3', 'v1.3.0'), ('1.28.0', 'v1.4.0'), ('1.29.2', 'v1.4.0'), ('1.30.0', 'v1.5.1'),
                                           ('1.30.1-rc.0', 'v1.5.1')])
def test_ambient_gateway_api_follows_the_istio_release(istio, pinned):
    result = plan('ambient', common={'istio_version': istio}, hostvars=two_networks())
    assert result['gateway_api'] == {
        'version': pinned, 'crds': 'https://github.com/kubernetes-sigs/gateway-api/releases/download/%s/standard-install.yaml' % pinned}
    # Only the note that releases before 1.29 are not among the tested ones.
    assert [w for w in result['warnings'] if 'this collection is tested with' not in w] == []


def test_ambient_gateway_api_version_given():
    result = plan('ambient', common={'istio_version': '1.31.0', 'istio_gateway_api_version': '1.6.0'}, hostvars=two_networks())
    assert result['gateway_api'] == {
        'version': 'v1.6.0', 'crds': 'https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.0/standard-install.yaml'}


@pytest.mark.parametrize('crds', ['/srv/gateway-api/standard', '~/crds.yaml', 'https://mirror.example.com/gateway-api/v1.5.1/standard-install.yaml',
                                  'HTTP://mirror.example.com/crds.yaml'])
def test_ambient_gateway_api_source_given(crds):
    result = plan('ambient', common=dict(AMBIENT, istio_gateway_api_crds=crds), hostvars=two_networks())
    # The version stays known (the release's pin), so the CRDs' bundle version can be checked against it.
    assert result['gateway_api'] == {'version': 'v1.5.1', 'crds': crds}


def test_ambient_gateway_api_older_than_pinned_warns():
    result = plan('ambient', common=dict(AMBIENT, istio_gateway_api_version='v1.4.0'), hostvars=two_networks())
    assert result['gateway_api']['version'] == 'v1.4.0'
    assert result['warnings'] == ['istio_gateway_api_version v1.4.0 is older than v1.5.1, the Gateway API version Istio 1.30.0 is built '
                                  'against; istiod may need fields those CRDs lack']


@pytest.mark.parametrize('model', ['multi_primary', 'primary_remote'])
def test_gateway_api_only_for_ambient(model):
    assert plan(model, common={'istio_gateway_api_crds': '/opt/crds', 'istio_version': '1.31.0'})['gateway_api'] is None


def test_gateway_api_version_order():
    parse = topology.parse_gateway_api_version
    assert parse('v1.5.0-dev') < parse('v1.5.0') < parse('1.5.1') < parse('v1.10.0')
    assert parse('v1.5') is None and parse('latest') is None and parse(None) is None


def test_ambient_single_network_warns():
    result = plan('ambient', common=AMBIENT)
    assert result['multi_network'] is False
    assert len(result['warnings']) == 1
    assert 'single network (network1)' in result['warnings'][0]
    assert not any(cluster['eastwest_gateway'] for cluster in result['clusters'].values())


def test_ambient_without_version_is_not_gated():
    result = plan('ambient', common={'istio_gateway_api_crds': '/opt/crds'}, hostvars=two_networks())
    assert result['version'] is None
    assert result['gateway_api'] == {'version': None, 'crds': '/opt/crds'}


def test_revision_in_values():
    result = plan('primary_remote', primaries=('c1',), remotes=('r1',), common={'istio_revision': '1-31-0'})
    assert result['revision'] == '1-31-0'
    primary, remote = result['clusters']['c1']['install'], result['clusters']['r1']['install']
    assert primary['istiod']['revision'] == '1-31-0'
    assert remote['istiod']['revision'] == '1-31-0'
    # A revisioned install must not take over the default revision: base is left alone.
    assert primary['base'] == {'global': {'externalIstiod': True}}
    assert remote['base'] == {'profile': 'remote'}


def test_revision_in_ambient_values():
    install = plan('ambient', common=dict(AMBIENT, istio_revision='canary'), hostvars=two_networks())['clusters']['c1']['install']
    assert install['istiod']['revision'] == install['cni']['revision'] == install['ztunnel']['revision'] == 'canary'
    assert 'revision' not in install['base']


def test_no_revision_key_without_revision():
    install = plan()['clusters']['c1']['install']
    assert 'revision' not in install['istiod']


def test_defaults():
    result = plan('primary_remote', primaries=('c1',), remotes=('r1',))
    assert (result['mesh_id'], result['namespace'], result['revision'], result['install_method'], result['version']) == \
        ('mesh1', 'istio-system', '', 'helm', None)
    assert result['allow_loopback_api_server'] is False
    assert result['token'] == {'type': 'secret', 'expiration': 86400 * 30}
    remote = result['clusters']['r1']
    assert (remote['cluster_id'], remote['network'], remote['primary']) == ('r1', 'network1', 'c1')
    assert (remote['context'], remote['kubeconfig'], remote['api_server']) == ('kind-r1', None, None)


def test_explicit_settings_flow_into_the_plan():
    result = plan(common={'istio_mesh_id': 'prod', 'istio_system_namespace': 'mesh-system', 'istio_install_method': 'istioctl',
                          'istio_version': '1.31.0', 'kubeconfig': '/k/config'},
                  hostvars={'c1': {'istio_cluster_id': 'east', 'kube_context': 'admin@east'},
                            'c2': {'istio_cluster_id': 'west', 'kube_context': 'admin@west'}})
    assert (result['mesh_id'], result['namespace'], result['install_method'], result['version']) == ('prod', 'mesh-system', 'istioctl', '1.31.0')
    c1 = result['clusters']['c1']
    assert (c1['host'], c1['cluster_id'], c1['context'], c1['kubeconfig']) == ('c1', 'east', 'admin@east', '/k/config')
    assert c1['install']['istiod']['global'] == {'meshID': 'prod', 'multiCluster': {'clusterName': 'east'}, 'network': 'network1'}
    # secrets_held holds cluster IDs, secret_consumers hostnames.
    assert c1['secrets_held'] == ['west'] and c1['secret_consumers'] == ['c2']


# --- properties over several topologies ---------------------------------------------------------

SCENARIOS = {
    'multi-primary-1net': dict(model='multi_primary'),
    'multi-primary-3net': dict(model='multi_primary', primaries=('a', 'b', 'c'), hostvars={'b': {'istio_network': 'n2'}, 'c': {'istio_network': 'n3'}}),
    'primary-remote': dict(model='primary_remote', primaries=('c1',), remotes=('r1', 'r2')),
    'mixed': dict(model='primary_remote', primaries=('c1', 'c2'), remotes=('r1', 'r2'), hostvars={
        'r1': {'istio_primary_cluster': 'c1'}, 'r2': {'istio_primary_cluster': 'c2', 'istio_network': 'network2'},
        'c2': {'istio_network': 'network2'}}),
    'ambient': dict(model='ambient', hostvars=two_networks(), common=dict(AMBIENT, istio_revision='rev1')),
}


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_json_round_trip(name):
    result = plan(**SCENARIOS[name])
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_plan_keys(name):
    result = plan(**SCENARIOS[name])
    assert set(result) == {'model', 'mesh_id', 'namespace', 'revision', 'revision_tags', 'install_method', 'version', 'multi_network',
                           'allow_loopback_api_server', 'token', 'gateway_api', 'networks', 'primaries', 'remotes', 'warnings', 'clusters',
                           'installed_revisions', 'other_revisions', 'successor_revision', 'samples'}
    # Filled in by check_live from the clusters; empty in the plan of the inventory alone.
    assert (result['installed_revisions'], result['other_revisions'], result['successor_revision']) == ({}, [], None)
    assert (result['gateway_api'] is None) == (result['model'] != 'ambient')
    for cluster in result['clusters'].values():
        assert set(cluster) == {'host', 'cluster_id', 'role', 'network', 'context', 'kubeconfig', 'api_server', 'connection', 'primary', 'remotes',
                                'eastwest_gateway', 'expose_services', 'expose_istiod', 'secret_consumers', 'secrets_held',
                                'namespace_labels', 'namespace_annotations', 'platform', 'install'}
        assert cluster['connection'] == {'name': cluster['host'], 'context': cluster['context'], 'kubeconfig': cluster['kubeconfig'],
                                         'namespace': result['namespace']}
        assert set(cluster['install']) == {'profile', 'base', 'istiod', 'cni', 'ztunnel', 'node_namespace'}


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_secret_invariants(name):
    result = plan(**SCENARIOS[name])
    clusters = result['clusters']
    for host, cluster in clusters.items():
        assert cluster['cluster_id'] not in cluster['secrets_held']
        assert cluster['secrets_held'] == sorted(cluster['secrets_held'])
        assert len(set(cluster['secrets_held'])) == len(cluster['secrets_held'])
        if cluster['role'] == 'remote':
            assert cluster['secrets_held'] == []
        # secret_consumers and secrets_held describe the same edges from both ends.
        for consumer in cluster['secret_consumers']:
            assert clusters[consumer]['role'] == 'primary'
            assert cluster['cluster_id'] in clusters[consumer]['secrets_held']
        holders = sorted(other for other, entry in clusters.items() if cluster['cluster_id'] in entry['secrets_held'])
        assert holders == cluster['secret_consumers'] == sorted(p for p in result['primaries'] if p != host)


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_deterministic_regardless_of_input_order(name):
    hosts, groups = inventory(**{key: value for key, value in SCENARIOS[name].items() if key != 'model'})
    model = SCENARIOS[name]['model']
    expected = json.dumps(plan_mesh(hosts, groups, model))
    rng = random.Random(7)
    for _attempt in range(5):
        names = list(hosts)
        rng.shuffle(names)
        shuffled_hosts = dict((host, hosts[host]) for host in names)
        shuffled_groups = dict((group, rng.sample(members, len(members))) for group, members in groups.items())
        assert json.dumps(plan_mesh(shuffled_hosts, shuffled_groups, model)) == expected


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_no_shared_containers(name):
    """No dict or list appears twice: consumers may mutate one cluster's entry, and YAML output gets no anchors."""
    seen = set()

    def walk(node):
        if isinstance(node, (dict, list)):
            assert id(node) not in seen
            seen.add(id(node))
            for child in (node.values() if isinstance(node, dict) else node):
                walk(child)

    walk(plan(**SCENARIOS[name]))


def test_inputs_are_not_modified():
    hosts, groups = inventory(remotes=('r1',), hostvars={'r1': {'istio_primary_cluster': 'c1'}})
    before = copy.deepcopy((hosts, groups))
    plan_mesh(hosts, groups, 'primary_remote')
    assert (hosts, groups) == before


def synthetic_inventory(primaries=10, remotes=190, networks=5):
    names = ['p%03d' % index for index in range(primaries)] + ['r%03d' % index for index in range(remotes)]
    hosts = {}
    for index, name in enumerate(names):
        hosts[name] = {'kube_context': 'ctx-' + name, 'istio_network': 'net%d' % (index % networks), 'istio_mesh_id': 'big'}
        if name.startswith('r'):
            hosts[name]['istio_primary_cluster'] = names[index % primaries]
    return hosts, {'istio_primary': names[:primaries], 'istio_remote': names[primaries:]}


def test_large_inventory():
    hosts, groups = synthetic_inventory()
    started = time.perf_counter()
    result = plan_mesh(hosts, groups, 'primary_remote')
    elapsed = time.perf_counter() - started
    assert len(result['clusters']) == 200 and len(result['networks']) == 5
    assert sum(len(cluster['secrets_held']) for cluster in result['clusters'].values()) == 10 * 199
    assert sum(len(result['clusters'][p]['remotes']) for p in result['primaries']) == 190
    # Generous bound (real figure: milliseconds); it only catches an accidental blow-up.
    assert elapsed < 2.0


# --- adding and decommissioning one cluster -------------------------------------------------------

def change(cluster, operation, model='multi_primary', **kwargs):
    hosts, groups = inventory(**kwargs)
    return topology.plan_change(hosts, groups, model, cluster, operation)


def change_problems(cluster, operation, model='multi_primary', **kwargs):
    hosts, groups = inventory(**kwargs)
    with pytest.raises(MeshError) as excinfo:
        topology.plan_change(hosts, groups, model, cluster, operation)
    return excinfo.value.problems


def test_add_a_primary_to_a_multi_network_mesh():
    nets = {'c1': {'istio_network': 'n1'}, 'c2': {'istio_network': 'n2'}, 'c3': {'istio_network': 'n3'}}
    got = change('c3', 'add', primaries=('c1', 'c2', 'c3'), hostvars=nets)
    assert got == {'operation': 'add', 'cluster': 'c3', 'cluster_id': 'c3', 'role': 'primary', 'others': ['c1', 'c2'],
                   'consumers': ['c1', 'c2'], 'consumes': ['c1', 'c2'], 'warnings': []}


def test_add_a_remote_to_a_primary_that_already_has_one():
    got = change('r2', 'add', model='primary_remote', primaries=('p1',), remotes=('r1', 'r2'))
    assert (got['role'], got['consumers'], got['consumes']) == ('remote', ['p1'], [])


def test_add_refused_when_the_others_would_change():
    # One network becomes two: the existing clusters would need east-west gateways.
    problems = change_problems('c3', 'add', primaries=('c1', 'c2', 'c3'), hostvars={'c3': {'istio_network': 'n2'}})
    assert [(p.host, p.field) for p in problems] == [('c1', 'istio_cluster'), ('c2', 'istio_cluster')]
    assert 'eastwest_gateway' in problems[0].message and "run the model's playbook" in problems[0].message
    # A primary's first remote turns on its external istiod and istiod exposure.
    problems = change_problems('r1', 'add', model='primary_remote', primaries=('p1',), remotes=('r1',))
    assert [p.host for p in problems] == ['p1'] and 'expose_istiod' in problems[0].message


def test_decommission_warns_about_what_stays_on_the_others():
    got = change('c3', 'decommission', primaries=('c1', 'c2', 'c3'), hostvars={'c3': {'istio_network': 'n2'}})
    assert got['consumers'] == ['c1', 'c2'] and len(got['warnings']) == 2 and 'eastwest_gateway' in got['warnings'][0]


@pytest.mark.parametrize('cluster, fragment', [
    (None, 'must name the inventory host of the cluster to add (it is not set)'),
    ('c9', "'c9' is not a host of the mesh in this inventory"),
    (['c1'], 'got list'),
])
def test_change_names_a_host_of_the_inventory(cluster, fragment):
    problems = change_problems(cluster, 'add')
    assert len(problems) == 1 and problems[0].field == 'istio_cluster' and fragment in problems[0].message


def test_decommission_the_primary_of_remotes_is_refused():
    problems = change_problems('p1', 'decommission', model='primary_remote', primaries=('p1', 'p2'), remotes=('r1',),
                               hostvars={'r1': {'istio_primary_cluster': 'p1'}})
    assert [(p.host, p.field) for p in problems] == [('p1', 'istio_cluster')]
    assert 'without this cluster the mesh would not be valid' in problems[0].message


def test_the_only_cluster_cannot_be_added_or_decommissioned():
    problems = change_problems('c1', 'decommission', primaries=('c1',))
    assert 'is the only cluster of the mesh' in problems[0].message


# --- verification samples -----------------------------------------------------------------------

def test_samples_spread_versions_over_clusters():
    result = plan('primary_remote', primaries=('c1', 'c2'), remotes=('c3',), hostvars={'c3': {'istio_primary_cluster': 'c1'}},
                  common={'istio_version': '1.30.3'})
    assert result['samples']['helloworld'] == {'c1': ['v1'], 'c2': ['v2'], 'c3': ['v1']}
    assert result['samples']['images'] == {'helloworld-v1': 'registry.istio.io/release/examples-helloworld-v1:1.0',
                                           'helloworld-v2': 'registry.istio.io/release/examples-helloworld-v2:1.0',
                                           'curl': 'docker.io/curlimages/curl:8.16.0'}


def test_samples_of_one_cluster_and_of_older_releases():
    result = plan(primaries=('c1',), common={'istio_version': '1.29.6'})
    assert result['samples']['helloworld'] == {'c1': ['v1', 'v2']}
    assert result['samples']['images']['helloworld-v2'] == 'docker.io/istio/examples-helloworld-v2:1.0'
    # Unpinned: the chart's version, unknown here; the newest layout.
    assert plan()['samples']['images']['helloworld-v1'].startswith('registry.istio.io/')


def test_untested_version_warns():
    assert plan(common={'istio_version': '1.30.3'})['warnings'] == []
    assert plan(common={'istio_version': '1.31.0-alpha.b01690e6'})['warnings'] == []
    warnings = plan(common={'istio_version': '1.26.2'})['warnings']
    assert len(warnings) == 1 and warnings[0].startswith('istio_version 1.26.2: this collection is tested with Istio 1.29, 1.30, 1.31')
