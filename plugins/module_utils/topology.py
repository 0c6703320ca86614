# -*- coding: utf-8 -*-
# Copyright: (c) 2025, meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure topology model of a multicluster Istio mesh: validate the inventory, then plan.

Nothing here touches a cluster or imports Ansible: ``plan_mesh`` turns the inventory (hosts =
clusters, groups ``istio_primary`` / ``istio_remote`` = roles) into a JSON-serialisable plan that
roles and modules read; they never re-derive these rules.

Every problem found is collected first and raised together as one ``MeshError``; each ``Problem``
names the host (``None`` = the whole mesh), the variable and how to fix it.

Plan shape (returned by ``plan_mesh``)::

    {
      'model': 'multi_primary' | 'primary_remote' | 'ambient',
      'mesh_id': str, 'namespace': str, 'revision': str ('' when none), 'install_method': str,
      'version': str | None, 'multi_network': bool, 'allow_loopback_api_server': bool,
      'token': {'type': 'secret' | 'token_request', 'expiration': int (seconds)},
      'gateway_api': None | {'version': 'vX.Y.Z' | None, 'crds': URL or controller path},  # ambient: CRDs to install
      'networks': {network: [hostnames, sorted]},
      'primaries': [hostnames, sorted], 'remotes': [hostnames, sorted],
      'warnings': [str],
      # Filled in by check_live from what the clusters hold (empty before): the control-plane revisions installed in
      # each cluster ('default' = unrevisioned), the ones other than this plan's revision anywhere in the mesh, and
      # the one that takes over the default-revision role (base chart defaultRevision, east-west gateway) when this
      # revision is uninstalled while others stay (None when none stays).
      'installed_revisions': {hostname: [revisions]}, 'other_revisions': [revisions], 'successor_revision': str | None,
      # Istio's "Verify the installation" samples, as that release ships them: helloworld versions per cluster (every
      # cluster holds one, every version runs somewhere) and the images.
      'samples': {'helloworld': {hostname: ['v1' | 'v2']}, 'images': {'helloworld-v1': str, 'helloworld-v2': str, 'curl': str}},
      'clusters': {
        hostname: {
          'host': hostname, 'cluster_id': str, 'role': 'primary' | 'remote', 'network': str,
          'context': str, 'kubeconfig': str | None, 'api_server': str | None,
          'connection': {'name': hostname, 'context': str, 'kubeconfig': str | None, 'namespace': str},
          'primary': hostname | None,      # remotes: hostname of the controlling primary
          'remotes': [hostnames],          # primaries: the remotes they control (sorted)
          'eastwest_gateway': bool,        # ambient: the Gateway API 'istio-east-west' gateway
          'expose_services': bool, 'expose_istiod': bool,
          'secret_consumers': [hostnames], # clusters that must hold THIS cluster's remote secret
          'secrets_held': [cluster_ids],   # remote secrets this cluster holds (sorted)
          'namespace_labels': {'topology.istio.io/network': network},
          'namespace_annotations': {} | {'topology.istio.io/controlPlaneClusters': primary cluster id},
          'platform': 'kubernetes' | 'openshift' | None,  # None until preflight detects it (istio_platform: auto)
          'install': {                     # Helm values per chart; also IstioOperator spec.values
            'profile': 'default' | 'remote' | 'ambient',
            'base': dict, 'istiod': dict, 'cni': dict | None, 'ztunnel': dict | None,
            'node_namespace': str,         # where istio-cni and ztunnel go (kube-system on OpenShift)
          },
        },
      },
    }

Remote clusters get ``install.istiod.global.remotePilotAddress``: ``istio_remote_pilot_address`` when the
inventory sets it on the remote or on its primary (a DNS name of the primary's gateway, say), else ``None``: the address of the
controlling primary's east-west gateway only exists once that gateway is up, so the control-plane
role fills it in at runtime.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os.path
import re
from collections import namedtuple
from urllib.parse import urlsplit

MODELS = ('multi_primary', 'primary_remote', 'ambient')
PRIMARY_GROUP = 'istio_primary'
REMOTE_GROUP = 'istio_remote'

NETWORK_LABEL = 'topology.istio.io/network'
CONTROL_PLANE_CLUSTERS_ANNOTATION = 'topology.istio.io/controlPlaneClusters'
MULTICLUSTER_LABEL = 'istio/multiCluster'
CLUSTER_ANNOTATION = 'networking.istio.io/cluster'
READER_SERVICE_ACCOUNT = 'istio-reader-service-account'
AMBIENT_MULTI_NETWORK_ENV = 'AMBIENT_ENABLE_MULTI_NETWORK'

DEFAULT_MESH_ID = 'mesh1'
DEFAULT_NETWORK = 'network1'
DEFAULT_NAMESPACE = 'istio-system'
DEFAULT_INSTALL_METHOD = 'helm'
INSTALL_METHODS = ('helm', 'istioctl')
DEFAULT_TOKEN_TYPE = 'secret'
TOKEN_TYPES = ('secret', 'token_request')
DEFAULT_TOKEN_EXPIRATION = 86400 * 30
MIN_TOKEN_EXPIRATION = 600
AMBIENT_MIN_VERSION = (1, 27)
# The istiod chart's remote profile (remote clusters) replaced the istiod-remote chart in 1.24.
REMOTE_PROFILE_MIN_VERSION = (1, 24)
PLATFORMS = ('auto', 'kubernetes', 'openshift')
# OpenShift admits privileged node agents (istio-cni, ztunnel) only in kube-system (the charts' openshift profile).
OPENSHIFT_NODE_NAMESPACE = 'kube-system'
# The sigs.k8s.io/gateway-api version in each Istio release's go.mod: the Gateway API CRDs that release is built and
# tested against (ambient needs them before istiod). Later releases: istio_gateway_api_version or istio_gateway_api_crds.
GATEWAY_API_PINS = {(1, 27): 'v1.3.0', (1, 28): 'v1.4.0', (1, 29): 'v1.4.0', (1, 30): 'v1.5.1'}
# The ambient east-west Gateway is a gateway.networking.k8s.io/v1 Gateway, served from Gateway API v1.0.0 on.
GATEWAY_API_MIN_VERSION = (1, 0, 0)
# The Istio minor versions this collection is tested with (README, "Support matrix"); others get a warning.
TESTED_VERSIONS = ((1, 29), (1, 30), (1, 31))
# samples/helloworld and samples/curl of the releases: 1.30 moved the helloworld images to Istio's own registry.
HELLOWORLD_VERSIONS = ('v1', 'v2')
HELLOWORLD_IMAGE = {'before_1_30': 'docker.io/istio/examples-helloworld-%s:1.0',
                    'from_1_30': 'registry.istio.io/release/examples-helloworld-%s:1.0'}
CURL_IMAGE = 'docker.io/curlimages/curl:8.16.0'
GATEWAY_API_RELEASE_URL = 'https://github.com/kubernetes-sigs/gateway-api/releases/download/%s/standard-install.yaml'

_DNS1123_LABEL = re.compile(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?')
_NETWORK_NAME = re.compile(r'[a-z0-9]([-a-z0-9_.]*[a-z0-9])?')
_VERSION = re.compile(r'(\d+)\.(\d+)(?:\.(\d+))?(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?')
_GATEWAY_API_VERSION = re.compile(r'v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z][0-9A-Za-z.-]*)?')
_DIGITS = re.compile(r'[0-9]+')
_MAX_NAME = 63
_BOOL_STRINGS = {'true': True, 'yes': True, 'false': False, 'no': False}

_DNS_RULE = "a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"
_NETWORK_RULE = "lower-case letters, digits, '-', '_' and '.', at most 63 characters, starting and ending with a letter or digit"


def remote_secret_name(cluster_id):
    """Name of the Secret, in each consumer's system namespace, that holds cluster_id's kubeconfig."""
    return 'istio-remote-secret-' + cluster_id


class Problem(namedtuple('Problem', ['host', 'field', 'message'])):
    """One validation failure; host is None for a mesh-wide problem."""

    __slots__ = ()

    def __str__(self):
        where = 'mesh' if self.host is None else 'host %s' % self.host
        return '%s: %s: %s' % (where, self.field, self.message)


class MeshError(Exception):
    """The inventory does not describe a valid mesh; .problems lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('\n'.join(str(problem) for problem in self.problems))


def parse_version(text):
    """(major, minor, patch) of an Istio version like 1.31.0 or 1.31.0-alpha.x, or None if unparsable."""
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def parse_gateway_api_version(text):
    """(major, minor, patch, is_release) of a Gateway API version like v1.5.1 or v1.5.0-dev, or None if unparsable;
    tuples order versions (a pre-release sorts before its release)."""
    match = _GATEWAY_API_VERSION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) is None


def check_api_server(url, allow_loopback):
    """Why url cannot be the API server other clusters' istiod dials, or None if it can."""
    if not isinstance(url, str) or not url.strip():
        return 'API server URL %r must be a non-empty https URL, e.g. https://203.0.113.10:6443' % (url,)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port  # raises ValueError when not a number in 0-65535
    except ValueError as exc:
        return 'API server URL %r is not a valid URL (%s); write it as https://<host>[:<port>]' % (url, exc)
    if port == 0:
        return 'API server URL %r has port 0, which nothing can connect to; write it as https://<host>[:<port>]' % (url,)
    if parts.scheme.lower() != 'https':
        return 'API server URL %r must use https (istiod in the other clusters connects to it over TLS); write it as https://<host>[:<port>]' % (url,)
    if not host:
        return 'API server URL %r has no host; write it as https://<host>[:<port>]' % (url,)
    if not allow_loopback and _is_loopback(host):
        return ('API server URL %r points at the loopback address %s, which istiod in the other clusters cannot reach; '
                'set istio_api_server to an address reachable from the other clusters, or set istio_allow_loopback_api_server: true '
                'for a lab that makes this address reachable' % (url, host))
    return None


def _is_loopback(host):
    name = host.lower().rstrip('.')
    if name == 'localhost' or name.endswith('.localhost'):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    # ::ffff:127.0.0.1 is 127.0.0.1 in disguise.
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def plan_mesh(hosts, groups, model):
    """Validate the inventory and return the plan (see the module docstring) or raise MeshError.

    hosts: inventory hostname -> that host's variables (group vars merged, as hostvars gives them).
    groups: group name -> list of hostnames (Ansible's groups).
    model: one of MODELS.
    """
    problems = []
    warnings = []
    if model not in MODELS:
        problems.append(Problem(None, 'model', '%r is not a mesh model; use one of %s (each playbook sets its own)' % (model, ', '.join(MODELS))))
    primaries, remotes = _split_roles(groups, problems)
    names = sorted(primaries + remotes)
    mesh_vars = [hosts.get(name) or {} for name in names]
    settings = _mesh_settings(names, mesh_vars, problems, warnings)

    remote_set = set(remotes)
    clusters = {}
    wanted_primary = {}
    for name, hostvars in zip(names, mesh_vars):
        role = 'remote' if name in remote_set else 'primary'
        clusters[name] = _read_cluster(name, hostvars, role, settings, problems)
        wanted_primary[name] = _optional_str(problems, name, 'istio_primary_cluster', hostvars.get('istio_primary_cluster'), 'cluster1')
    _check_unique(names, clusters, problems)
    _check_model(model, settings, clusters, remotes, problems, warnings)
    # Remotes the model rejects outright need no controlling primary (that would be a second error).
    accepted_remotes = [] if model in ('multi_primary', 'ambient') else remotes
    controller = _assign_primaries(clusters, primaries, accepted_remotes, wanted_primary, problems)
    if problems:
        raise MeshError(problems)
    return _build_plan(model, settings, clusters, primaries, remotes, controller, warnings)


CHANGE_OPERATIONS = ('add', 'decommission')
# What may differ for the other clusters when one cluster joins or leaves: whose secrets they hold or hand out, and
# the list of remotes a primary controls once it already controls some (nothing of its install depends on the list).
_CHANGE_FREE_FIELDS = ('secret_consumers', 'secrets_held', 'remotes')


def plan_change(hosts, groups, model, cluster, operation):
    """Plan adding one cluster to a running mesh, or decommissioning one, or raise MeshError.

    The inventory holds the cluster in both cases (to add: already written in; to decommission: still there). The
    mesh without it must be valid too, and the other clusters' install must be the same with and without it: adding
    may only hand out and add remote secrets on them (an add that would need more, such as east-west gateways when
    the mesh becomes multi-network, is refused: run the model's playbook instead); a decommission that leaves
    something on them no longer needed only warns.

    Returns {'operation', 'cluster' (hostname), 'cluster_id', 'role', 'others' (hostnames, sorted),
    'consumers' (hosts that hold or get the cluster's remote secret), 'consumes' (hosts whose remote secret the
    cluster holds or gets), 'warnings'}.
    """
    problems = []
    if operation not in CHANGE_OPERATIONS:
        raise MeshError([Problem(None, 'operation', '%r is not one of %s' % (operation, ', '.join(CHANGE_OPERATIONS)))])
    members = sorted(set(groups.get(PRIMARY_GROUP) or ()) | set(groups.get(REMOTE_GROUP) or ()))
    if not isinstance(cluster, str) or not cluster:
        got = 'it is not set' if cluster is None else 'got %s %r' % (type(cluster).__name__, cluster)
        raise MeshError([Problem(None, 'istio_cluster', 'must name the inventory host of the cluster to %s (%s); pass -e istio_cluster=<host>, '
                                 'one of: %s' % (operation, got, ', '.join(members) or '(none)'))])
    if cluster not in members:
        raise MeshError([Problem(cluster, 'istio_cluster', '%r is not a host of the mesh in this inventory (groups %s, %s); set istio_cluster to '
                                 'one of: %s%s' % (cluster, PRIMARY_GROUP, REMOTE_GROUP, ', '.join(members) or '(none)',
                                                   ' (add the new cluster to the inventory first)' if operation == 'add' else ''))])
    full = plan_mesh(hosts, groups, model)
    others = [name for name in members if name != cluster]
    if not others:
        raise MeshError([Problem(cluster, 'istio_cluster', 'is the only cluster of the mesh; use the model\'s playbook to install it, '
                                 'or playbooks/uninstall.yml to remove it')])
    reduced_groups = dict((group, [name for name in (names or ()) if name != cluster]) for group, names in groups.items())
    try:
        without = plan_mesh(dict((name, hosts.get(name) or {}) for name in others), reduced_groups, model)
    except MeshError as e:
        raise MeshError([Problem(cluster, 'istio_cluster', 'without this cluster the mesh would not be valid (%s); %s' % (
            '; '.join(str(p) for p in e.problems),
            'fix the inventory first' if operation == 'add' else 'decommission what depends on it first'))])
    warnings = []
    for name in others:
        before, after = ((without, full) if operation == 'add' else (full, without))
        changed = sorted(k for k in set(before['clusters'][name]) | set(after['clusters'][name])
                         if k not in _CHANGE_FREE_FIELDS and before['clusters'][name].get(k) != after['clusters'][name].get(k))
        if not changed:
            continue
        if operation == 'add':
            problems.append(Problem(name, 'istio_cluster', 'adding %s changes this existing cluster beyond remote secrets (%s), which '
                                    'add-cluster does not touch; run the model\'s playbook for the whole mesh instead' % (cluster, ', '.join(changed))))
        else:
            warnings.append('host %s: without %s it would be installed differently (%s); decommission leaves it as it is: run the '
                            'model\'s playbook afterwards to converge it' % (name, cluster, ', '.join(changed)))
    if problems:
        raise MeshError(problems)
    me = full['clusters'][cluster]
    return {
        'operation': operation,
        'cluster': cluster,
        'cluster_id': me['cluster_id'],
        'role': me['role'],
        'others': others,
        'consumers': list(me['secret_consumers']),
        'consumes': [name for name in others if cluster in full['clusters'][name]['secret_consumers']],
        'warnings': warnings,
    }


def _split_roles(groups, problems):
    """Sorted (primaries, remotes); a host in both groups is an error and counted as a primary."""
    primary_set = set(groups.get(PRIMARY_GROUP) or ())
    remote_set = set(groups.get(REMOTE_GROUP) or ())
    for name in sorted(primary_set & remote_set):
        problems.append(Problem(name, 'group', 'is in both %s and %s; a cluster is either a primary or a remote: remove it from one of the groups'
                                % (PRIMARY_GROUP, REMOTE_GROUP)))
    if not primary_set:
        problems.append(Problem(None, 'group', 'no host is in group %s; a mesh needs at least one primary cluster (one that runs istiod): '
                                'add those clusters to group %s' % (PRIMARY_GROUP, PRIMARY_GROUP)))
    return sorted(primary_set), sorted(remote_set - primary_set)


# --- mesh-wide settings -------------------------------------------------------------------------

def _mesh_settings(names, mesh_vars, problems, warnings):
    """Read and validate the variables that must be identical on every mesh host."""
    def value(field):
        return _mesh_value(names, mesh_vars, field, problems)

    settings = {
        'mesh_id': _dns_label(problems, None, 'istio_mesh_id', value('istio_mesh_id'), DEFAULT_MESH_ID, 'mesh ID', DEFAULT_MESH_ID),
        'namespace': _dns_label(problems, None, 'istio_system_namespace', value('istio_system_namespace'), DEFAULT_NAMESPACE, 'namespace',
                                DEFAULT_NAMESPACE),
        'revision': _revision(problems, value('istio_revision')),
        'revision_tags': _revision_tags(problems, value('istio_revision_tags')),
        'install_method': _choice(problems, 'istio_install_method', value('istio_install_method'), INSTALL_METHODS, DEFAULT_INSTALL_METHOD),
        'version': _version(problems, value('istio_version')),
        'allow_loopback_api_server': _boolish(problems, 'istio_allow_loopback_api_server', value('istio_allow_loopback_api_server'), False),
    }
    token_type = _choice(problems, 'istio_token_type', value('istio_token_type'), TOKEN_TYPES, DEFAULT_TOKEN_TYPE)
    raw_expiration = value('istio_token_expiration')
    settings['token'] = {'type': token_type, 'expiration': _expiration(problems, raw_expiration)}
    settings['gateway_api_version'] = _gateway_api_version(problems, value('istio_gateway_api_version'))
    settings['gateway_api_crds'] = _gateway_api_crds(problems, value('istio_gateway_api_crds'))
    settings['gateway_api'] = None  # planned by _check_model for the ambient model
    if raw_expiration is not None and token_type == 'secret':
        warnings.append("istio_token_expiration is set but istio_token_type is 'secret' (long-lived token Secret); "
                        "it only applies with istio_token_type: token_request")
    return settings


def _mesh_value(names, mesh_vars, field, problems):
    """The value on the first mesh host; the first host that differs from it is a problem."""
    if not names:
        return None
    reference = mesh_vars[0].get(field)
    for name, hostvars in zip(names[1:], mesh_vars[1:]):
        other = hostvars.get(field)
        if other != reference:
            problems.append(Problem(name, field, '%s differs from %s on host %s; mesh-wide variables must be equal on every mesh host: '
                                    'set it once for all of them (e.g. in group_vars/all)' % (_show(other), _show(reference), names[0])))
            break
    return reference


def _show(value):
    return '(unset)' if value is None else repr(value)


def _revision(problems, raw):
    revision = _optional_str(problems, None, 'istio_revision', raw, '1-31-0')
    if revision is None:
        return ''
    if revision == 'default':
        problems.append(Problem(None, 'istio_revision', "'default' is reserved for the default revision tag, not a revision name; "
                                "leave istio_revision unset for an unrevisioned install, or use e.g. 1-31-0"))
        return ''
    return _dns_label(problems, None, 'istio_revision', revision, '', 'revision', '1-31-0')


def _revision_tags(problems, raw):
    """istio_revision_tags: tag -> revision, or None when unset (the run leaves tags alone). An explicitly empty
    mapping is a declaration too: no tags (those this collection made are removed)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(None, 'istio_revision_tags', 'must be a mapping of tag to revision, got %s %r; set it to e.g. '
                                '{prod-stable: 1-29-6, prod-canary: 1-30-3}' % (type(raw).__name__, raw)))
        return None
    tags = {}
    for tag, revision in sorted(raw.items(), key=lambda kv: str(kv[0])):
        field = 'istio_revision_tags.%s' % (tag,)
        if not isinstance(tag, str) or not _is_dns_label(tag):
            problems.append(Problem(None, field, 'the tag name %r is not %s; use e.g. prod-stable' % (tag, _DNS_RULE)))
            continue
        if not isinstance(revision, str) or not (revision == 'default' or _is_dns_label(revision)):
            problems.append(Problem(None, field, 'the revision %r is not a revision name (%s, or default for the unrevisioned '
                                    'control plane); use e.g. 1-29-6' % (revision, _DNS_RULE)))
            continue
        tags[tag] = revision
    return tags


def check_tags(plan, facts):
    """Revision tags against what every cluster will hold after this run: a tag must name a revision installed there
    or planned by this run, must not be named like a revision (istioctl refuses that: namespaces labelled with it
    would be ambiguous), and `default` cannot sit beside the unrevisioned control plane, whose own webhook already
    takes istio-injection=enabled namespaces (Istio's default tag replaces that webhook; the charts keep it)."""
    tags = plan['revision_tags']
    if tags is None:
        return []
    problems = []
    planned = revision_label(plan['revision'])
    for name in sorted(plan['clusters']):
        revisions = set((facts.get(name) or {}).get('revisions') or []) | set([planned])
        for tag, revision in sorted(tags.items()):
            field = 'istio_revision_tags.%s' % tag
            if tag in revisions and tag != 'default':
                problems.append(Problem(name, field, 'the tag %r has the name of a revision of this cluster; name the tag '
                                        'differently (e.g. prod-%s)' % (tag, tag)))
            elif revision not in revisions:
                problems.append(Problem(name, field, 'names revision %r, which this cluster does not have (it has %s) and this run '
                                        'does not install; install it first or point the tag at one of those'
                                        % (revision, ', '.join(sorted(revisions)))))
            elif tag == 'default' and 'default' in revisions:
                problems.append(Problem(name, field, 'the cluster has the unrevisioned control plane, which already is the '
                                        'default revision; leave the default tag out, or install every control plane '
                                        'as a revision'))
    return problems


def tag_problems(host, declared, live):
    """What verify finds wrong with host's revision tags: a declared tag (istio_revision_tags) missing or pointing
    elsewhere, and a tag that resolves differently here than on the first other cluster that has it (a mesh whose
    tag means two revisions injects the same namespace differently per cluster). live: host -> {tag: revision}."""
    mine = live.get(host) or {}
    problems = []
    for tag, revision in sorted((declared or {}).items()):
        if mine.get(tag) != revision:
            problems.append('revision tag %s points at %s, not %s as istio_revision_tags says'
                            % (tag, mine.get(tag) or 'nothing (missing)', revision))
    for tag, revision in sorted(mine.items()):
        if tag in (declared or {}):
            continue
        for other in sorted(live):
            theirs = (live[other] or {}).get(tag)
            if other != host and theirs is not None and theirs != revision:
                problems.append('revision tag %s points at %s here but at %s on %s' % (tag, revision, theirs, other))
                break
    return problems


def _choice(problems, field, raw, choices, default):
    if raw is None or raw == '':
        return default
    if raw not in choices:
        problems.append(Problem(None, field, '%r is not one of %s; set %s to one of them (default %s)' % (raw, ', '.join(choices), field, default)))
        return default
    return raw


def _version(problems, raw):
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        # YAML reads 1.30 as the float 1.3: only a quoted string keeps the version intact.
        problems.append(Problem(None, 'istio_version', "must be a string, got the number %r; quote it, e.g. istio_version: '1.31.0'" % (raw,)))
        return None
    version = _optional_str(problems, None, 'istio_version', raw, '1.31.0')
    if version is not None and parse_version(version) is None:
        problems.append(Problem(None, 'istio_version', '%r is not an Istio version (X.Y[.Z][-suffix]); set istio_version to e.g. 1.31.0' % (version,)))
        return None
    return version


def _gateway_api_version(problems, raw):
    """A Gateway API release version, normalised to vX.Y.Z; None when unset or invalid (the problem is recorded)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        problems.append(Problem(None, 'istio_gateway_api_version', "must be a string, got the number %r; quote it, e.g. "
                                "istio_gateway_api_version: 'v1.5.1'" % (raw,)))
        return None
    version = _optional_str(problems, None, 'istio_gateway_api_version', raw, 'v1.5.1')
    if version is None:
        return None
    if parse_gateway_api_version(version.strip()) is None:
        problems.append(Problem(None, 'istio_gateway_api_version', '%r is not a Gateway API release version (vX.Y.Z); set '
                                'istio_gateway_api_version to e.g. v1.5.1' % (version,)))
        return None
    version = version.strip()
    return version if version.startswith('v') else 'v' + version


def _gateway_api_crds(problems, raw):
    """Where the Gateway API CRDs come from: an http(s) URL, or an absolute path (~ allowed) on the controller."""
    source = _optional_str(problems, None, 'istio_gateway_api_crds', raw, '/opt/gateway-api/standard-install.yaml')
    if source is None:
        return None
    if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', source):
        if not re.match(r'^https?://', source, re.IGNORECASE):
            problems.append(Problem(None, 'istio_gateway_api_crds', '%r: only http(s) URLs can be fetched; download the CRDs (for a kustomize '
                                    'source, `kubectl kustomize <source> > crds.yaml`) and set istio_gateway_api_crds to that file' % (source,)))
            return None
    elif not (source.startswith('/') or source.startswith('~')):
        problems.append(Problem(None, 'istio_gateway_api_crds', '%r is a relative path, which depends on where ansible-playbook runs; '
                                'write it as an absolute path (or an http(s) URL)' % (source,)))
        return None
    return source


def _plan_gateway_api(settings, problems, warnings):
    """Which Gateway API CRDs an ambient mesh installs: {'version': 'vX.Y.Z' | None (unknown), 'crds': source}."""
    istio = parse_version(settings['version'])
    pinned = GATEWAY_API_PINS.get(istio[:2]) if istio else None
    version = settings['gateway_api_version'] or pinned
    crds = settings['gateway_api_crds']
    parsed = parse_gateway_api_version(version) if version else None
    if parsed is not None and parsed[:3] < GATEWAY_API_MIN_VERSION:
        problems.append(Problem(None, 'istio_gateway_api_version', '%s is too old: the ambient east-west gateway is a gateway.networking.k8s.io/v1 '
                                'Gateway, served from Gateway API v%d.%d.%d on; set istio_gateway_api_version to the version Istio pins (%s)'
                                % (version, GATEWAY_API_MIN_VERSION[0], GATEWAY_API_MIN_VERSION[1], GATEWAY_API_MIN_VERSION[2],
                                   pinned or "the sigs.k8s.io/gateway-api version in that release's go.mod")))
    elif parsed is not None and pinned and parsed < parse_gateway_api_version(pinned):
        warnings.append('istio_gateway_api_version %s is older than %s, the Gateway API version Istio %s is built against; istiod may need '
                        'fields those CRDs lack' % (version, pinned, settings['version']))
    if crds is None and version is None:
        why = ('istio_version is not set' if istio is None else
               'Istio %s is not in this collection\'s table of Gateway API versions (Istio %s)'
               % (settings['version'], ', '.join('%d.%d' % key for key in sorted(GATEWAY_API_PINS))))
        problems.append(Problem(None, 'istio_gateway_api_crds', 'ambient needs the Gateway API CRDs before istiod, and it cannot tell which: %s; set '
                                'istio_gateway_api_version to the sigs.k8s.io/gateway-api version in that Istio release\'s go.mod (e.g. v1.5.1), '
                                'or istio_gateway_api_crds to a directory, file or URL of the CRDs' % why))
        return None
    return {'version': version, 'crds': crds or GATEWAY_API_RELEASE_URL % version}


def _boolish(problems, field, raw, default):
    """A boolean as Ansible users write it: true/false or the strings true/false/yes/no."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[raw.strip().lower()]
    problems.append(Problem(None, field, '%r is not a boolean; set %s to true or false' % (raw, field)))
    return default


def _expiration(problems, raw):
    """Token lifetime in seconds; digit strings are accepted because -e key=value gives strings."""
    if raw is None:
        return DEFAULT_TOKEN_EXPIRATION
    if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int):
        problems.append(Problem(None, 'istio_token_expiration', '%r is not a whole number of seconds; set istio_token_expiration to e.g. %d (30 days)'
                                % (raw, DEFAULT_TOKEN_EXPIRATION)))
        return DEFAULT_TOKEN_EXPIRATION
    if raw < MIN_TOKEN_EXPIRATION:
        problems.append(Problem(None, 'istio_token_expiration', '%d seconds is too short; istiod must be able to refresh the token in time: '
                                'set istio_token_expiration to at least %d (default %d)' % (raw, MIN_TOKEN_EXPIRATION, DEFAULT_TOKEN_EXPIRATION)))
        return DEFAULT_TOKEN_EXPIRATION
    return raw


# --- per-cluster settings -----------------------------------------------------------------------

def _read_cluster(name, hostvars, role, settings, problems):
    """The host-level part of a plan cluster entry; topology fields are added by _build_plan."""
    context = hostvars.get('kube_context')
    if not isinstance(context, str) or not context.strip():
        got = 'it is not set' if context is None else 'got %s %r' % (type(context).__name__, context)
        problems.append(Problem(name, 'kube_context', 'must be the non-empty name of this cluster\'s kubeconfig context (%s); '
                                'set kube_context, e.g. kube_context: kind-%s' % (got, name)))
        context = None
    kubeconfig = _optional_str(problems, name, 'kubeconfig', hostvars.get('kubeconfig'), '~/.kube/config')
    api_server = _optional_str(problems, name, 'istio_api_server', hostvars.get('istio_api_server'), 'https://203.0.113.10:6443')
    if api_server is not None:
        reason = check_api_server(api_server, settings['allow_loopback_api_server'])
        if reason:
            problems.append(Problem(name, 'istio_api_server', reason))
    cluster_id = _cluster_id(name, hostvars.get('istio_cluster_id'), problems)
    network = _network(name, hostvars.get('istio_network'), problems)
    # On a primary: how its remotes reach its istiod; on a remote: its own override.
    pilot = _optional_str(problems, name, 'istio_remote_pilot_address', hostvars.get('istio_remote_pilot_address'), 'istiod.example.com')
    platform = hostvars.get('istio_platform')
    if platform in (None, ''):
        platform = 'auto'
    elif platform not in PLATFORMS:
        problems.append(Problem(name, 'istio_platform', '%r is not one of %s; leave it unset (auto: preflight detects OpenShift) or set '
                                'one of them' % (platform, ', '.join(PLATFORMS))))
        platform = 'auto'
    return {
        'host': name,
        'cluster_id': cluster_id,
        'role': role,
        'network': network,
        'context': context,
        'kubeconfig': kubeconfig,
        'api_server': api_server,
        # How other clusters' tasks address this one (e.g. the consumers of a remote secret).
        'connection': {'name': name, 'context': context, 'kubeconfig': kubeconfig, 'namespace': settings['namespace']},
        'remote_pilot_address': pilot,
        'platform': None if platform == 'auto' else platform,
    }


def _cluster_id(name, raw, problems):
    example = _suggest_label(name, 'cluster1')
    if raw is not None and raw != '':
        return _dns_label(problems, name, 'istio_cluster_id', raw, None, 'cluster ID', example)
    # The inventory hostname is the default, but hostnames allow what cluster IDs do not.
    if _is_dns_label(name):
        return name
    problems.append(Problem(name, 'istio_cluster_id', 'the inventory hostname %r, used as the default cluster ID, is not %s; '
                            'set istio_cluster_id to e.g. %s' % (name, _DNS_RULE, example)))
    return None


def _network(name, raw, problems):
    network = _optional_str(problems, name, 'istio_network', raw, DEFAULT_NETWORK)
    if network is None:
        # Unset means the default; a wrong type was reported and must not count as a network.
        return DEFAULT_NETWORK if raw is None or raw == '' else None
    if len(network) > _MAX_NAME or not _NETWORK_NAME.fullmatch(network):
        problems.append(Problem(name, 'istio_network', '%r is not a valid network name (%s); set istio_network to e.g. %s'
                                % (network, _NETWORK_RULE, DEFAULT_NETWORK)))
        return None
    return network


def _check_unique(names, clusters, problems):
    """Two hosts must not be the same cluster (context) nor share a cluster ID (remote secret key)."""
    context_owner = {}
    id_owner = {}
    for name in names:
        cluster = clusters[name]
        if cluster['context'] is not None:
            kubeconfig = os.path.normpath(cluster['kubeconfig']) if cluster['kubeconfig'] else None
            owner = context_owner.setdefault((cluster['context'], kubeconfig), name)
            if owner != name:
                where = 'the default kubeconfig' if kubeconfig is None else 'kubeconfig %r' % kubeconfig
                problems.append(Problem(name, 'kube_context', 'context %r in %s is already used by host %s, so both hosts would be the same cluster; '
                                        'point kube_context (or kubeconfig) at this cluster\'s own context' % (cluster['context'], where, owner)))
        if cluster['cluster_id'] is not None:
            owner = id_owner.setdefault(cluster['cluster_id'], name)
            if owner != name:
                problems.append(Problem(name, 'istio_cluster_id', 'cluster ID %r is already used by host %s; cluster IDs key the remote secrets and must be '
                                        'unique in the mesh: set a distinct istio_cluster_id' % (cluster['cluster_id'], owner)))


def _assign_primaries(clusters, primaries, remotes, wanted_primary, problems):
    """Map each remote to the hostname of the primary that controls it."""
    for name in primaries:
        if wanted_primary[name] is not None:
            problems.append(Problem(name, 'istio_primary_cluster', 'only remotes have a controlling primary, and this host is in %s; '
                                    'remove istio_primary_cluster from it (or move it to %s)' % (PRIMARY_GROUP, REMOTE_GROUP)))
    by_id = {}
    for name in sorted(clusters):
        by_id.setdefault(clusters[name]['cluster_id'], name)
    choices = ', '.join(primaries)
    controller = {}
    for name in remotes:
        wanted = wanted_primary[name]
        if wanted is None:
            if len(primaries) == 1:
                controller[name] = primaries[0]
            elif primaries:
                problems.append(Problem(name, 'istio_primary_cluster', 'the mesh has several primaries (%s), so a remote must name the one that '
                                        'controls it: set istio_primary_cluster to one of them' % choices))
            continue
        target = wanted if wanted in clusters else by_id.get(wanted)
        if target is None:
            problems.append(Problem(name, 'istio_primary_cluster', '%r is neither the inventory hostname nor the cluster ID of a mesh host; '
                                    'set istio_primary_cluster to one of the primaries: %s' % (wanted, choices or '(none)')))
        elif clusters[target]['role'] != 'primary':
            problems.append(Problem(name, 'istio_primary_cluster', '%r is host %s, a remote; a remote must be controlled by a primary: '
                                    'set istio_primary_cluster to one of the primaries: %s' % (wanted, target, choices or '(none)')))
        else:
            controller[name] = target
    return controller


def _check_model(model, settings, clusters, remotes, problems, warnings):
    """Rules that depend on the deployment model."""
    if model == 'multi_primary':
        for name in remotes:
            problems.append(Problem(name, 'group', 'is in %s, but a multi-primary mesh has no remotes; use playbooks/primary-remote.yml for a '
                                    'primary-remote mesh, or move the host to %s' % (REMOTE_GROUP, PRIMARY_GROUP)))
    version = parse_version(settings['version'])
    if version is not None and version[:2] not in TESTED_VERSIONS:
        warnings.append('istio_version %s: this collection is tested with Istio %s (README, "Support matrix"); other versions may need chart '
                        'values it does not set' % (settings['version'], ', '.join('%d.%d' % v for v in TESTED_VERSIONS)))
    if remotes and version is not None and version[:2] < REMOTE_PROFILE_MIN_VERSION:
        problems.append(Problem(None, 'istio_version', '%s is too old for remotes: they get the istiod chart\'s remote profile, which exists from '
                                '%d.%d on (before, the separate istiod-remote chart); set istio_version to %d.%d.0 or later'
                                % ((settings['version'],) + REMOTE_PROFILE_MIN_VERSION * 2)))
    if model != 'ambient':
        return
    for name in remotes:
        problems.append(Problem(name, 'group', 'is in %s, but Istio ambient multicluster supports multi-primary only; move the host to %s, '
                                'or use playbooks/primary-remote.yml for a sidecar-mode primary-remote mesh' % (REMOTE_GROUP, PRIMARY_GROUP)))
    if version is not None and version[:2] < AMBIENT_MIN_VERSION:
        problems.append(Problem(None, 'istio_version', '%s is too old: Istio ambient multicluster exists from %d.%d on; set istio_version to %d.%d.0 or later'
                                % (settings['version'], AMBIENT_MIN_VERSION[0], AMBIENT_MIN_VERSION[1], AMBIENT_MIN_VERSION[0], AMBIENT_MIN_VERSION[1])))
    else:
        # (A release too old for ambient has no Gateway API pin either: one problem, not two.)
        settings['gateway_api'] = _plan_gateway_api(settings, problems, warnings)
    if settings['revision'] and settings['install_method'] == 'istioctl':
        # Each revision's IstioOperator would own the one ztunnel and istio-cni of the cluster, and uninstalling a
        # revision would prune them; the charts install the node agents once, following the revision installed last.
        problems.append(Problem(None, 'istio_revision', '%r with istio_install_method istioctl: istioctl installs ztunnel and istio-cni as '
                                'components of every revision, so a second revision would take them over and removing one would remove '
                                'them; for a canary upgrade of an ambient mesh use istio_install_method: helm' % settings['revision']))
    networks = set(cluster['network'] for cluster in clusters.values())
    if len(networks) == 1:
        warnings.append('ambient multicluster on a single network (%s) is untested upstream and may be broken; Istio supports ambient multicluster '
                        'on multiple networks: give the clusters distinct istio_network values' % networks.pop())


# --- value helpers ------------------------------------------------------------------------------

def _optional_str(problems, host, field, raw, example):
    """None and '' (a templated-out value) mean unset; anything else must be a string."""
    if raw is None or raw == '':
        return None
    if isinstance(raw, str):
        return raw
    problems.append(Problem(host, field, 'must be a string, got %s %r; set %s to e.g. %s' % (type(raw).__name__, raw, field, example)))
    return None


def _dns_label(problems, host, field, raw, default, what, example):
    """A DNS-1123 label, or default when unset or invalid (the problem is recorded)."""
    value = _optional_str(problems, host, field, raw, example)
    if value is None:
        return default
    if not _is_dns_label(value):
        problems.append(Problem(host, field, '%r is not a valid %s (%s); set %s to e.g. %s' % (value, what, _DNS_RULE, field, _suggest_label(value, example))))
        return default
    return value


def _is_dns_label(value):
    return len(value) <= _MAX_NAME and _DNS1123_LABEL.fullmatch(value) is not None


def _suggest_label(value, fallback):
    """A DNS-1123 label close to value (Cluster_1 -> cluster-1, 1.31.0 -> 1-31-0), for fix hints."""
    candidate = re.sub(r'[^a-z0-9]+', '-', value.lower())[:_MAX_NAME].strip('-')
    return candidate or fallback


# --- plan ---------------------------------------------------------------------------------------

def samples(names, version):
    """Where Istio's verification samples go: helloworld v1 and v2 alternate over the clusters (sorted), so every cluster
    holds one version and, from two clusters on, each version runs in another cluster than the other; a single cluster
    holds both. Images are those of the release's samples (the newest layout when the version is unknown)."""
    if len(names) == 1:
        placement = {names[0]: list(HELLOWORLD_VERSIONS)}
    else:
        placement = dict((name, [HELLOWORLD_VERSIONS[i % len(HELLOWORLD_VERSIONS)]]) for i, name in enumerate(names))
    parsed = parse_version(version) if version else None
    layout = HELLOWORLD_IMAGE['before_1_30' if parsed is not None and parsed[:2] < (1, 30) else 'from_1_30']
    images = dict(('helloworld-' + v, layout % v) for v in HELLOWORLD_VERSIONS)
    images['curl'] = CURL_IMAGE
    return {'helloworld': placement, 'images': images}


def _build_plan(model, settings, clusters, primaries, remotes, controller, warnings):
    names = sorted(clusters)
    networks = {}
    for name in names:
        networks.setdefault(clusters[name]['network'], []).append(name)
    multi_network = len(networks) > 1
    controlled = dict((name, []) for name in primaries)
    for name in remotes:
        controlled[controller[name]].append(name)
    all_ids = sorted(cluster['cluster_id'] for cluster in clusters.values())
    pilot = dict((name, clusters[name].pop('remote_pilot_address')) for name in names)

    for name in names:
        cluster = clusters[name]
        is_primary = cluster['role'] == 'primary'
        my_remotes = controlled.get(name, [])
        primary = controller.get(name)
        cluster.update({
            'primary': primary,
            'remotes': my_remotes,
            # Across networks every cluster needs one; on one network only to let remotes reach istiod
            # (ambient has no remotes, so there it is only the multi-network Gateway API gateway).
            'eastwest_gateway': multi_network or bool(my_remotes),
            'expose_services': multi_network and is_primary and model != 'ambient',
            'expose_istiod': bool(my_remotes),
            # Full fan-out: every primary reads every other cluster's API server.
            'secret_consumers': [other for other in primaries if other != name],
            'secrets_held': [cid for cid in all_ids if cid != cluster['cluster_id']] if is_primary else [],
            'namespace_labels': {NETWORK_LABEL: cluster['network']},
            'namespace_annotations': {CONTROL_PLANE_CLUSTERS_ANNOTATION: clusters[primary]['cluster_id']} if primary else {},
            'install': _install_values(model, settings, cluster, bool(my_remotes), pilot[name] or pilot.get(primary)),
        })
        if cluster['platform']:
            apply_platform(cluster, cluster['platform'])
    return {
        'model': model,
        'mesh_id': settings['mesh_id'],
        'namespace': settings['namespace'],
        'revision': settings['revision'],
        'revision_tags': settings['revision_tags'],
        'install_method': settings['install_method'],
        'version': settings['version'],
        'multi_network': multi_network,
        'allow_loopback_api_server': settings['allow_loopback_api_server'],
        'token': settings['token'],
        'gateway_api': settings['gateway_api'],
        'networks': dict((network, networks[network]) for network in sorted(networks)),
        'primaries': primaries,
        'remotes': remotes,
        'warnings': warnings,
        'installed_revisions': {}, 'other_revisions': [], 'successor_revision': None,
        'samples': samples(names, settings['version']),
        'clusters': dict((name, clusters[name]) for name in names),
    }


def _install_values(model, settings, cluster, controls_remotes, pilot_address):
    """Helm values per chart for this cluster (fresh dicts: nothing is shared between clusters)."""
    cluster_id = cluster['cluster_id']
    network = cluster['network']
    global_values = {'meshID': settings['mesh_id'], 'multiCluster': {'clusterName': cluster_id}, 'network': network}
    cni = ztunnel = None
    if cluster['role'] == 'remote':
        profile = 'remote'
        base = {'profile': 'remote'}
        # None: filled in at runtime with the controlling primary's east-west gateway address.
        global_values.update({'configCluster': True, 'remotePilotAddress': pilot_address})
        istiod = {'profile': 'remote', 'global': global_values,
                  'istiodRemote': {'injectionPath': '/inject/cluster/%s/net/%s' % (cluster_id, network)}}
    else:
        profile = 'ambient' if model == 'ambient' else 'default'
        base = {}
        istiod = {'global': global_values}
        if controls_remotes:
            base['global'] = {'externalIstiod': True}
            global_values['externalIstiod'] = True
        if model == 'ambient':
            istiod.update({'profile': 'ambient', 'env': {AMBIENT_MULTI_NETWORK_ENV: 'true'}})
            cni = {'profile': 'ambient'}
            ztunnel = {'multiCluster': {'clusterName': cluster_id}, 'global': {'network': network}}
    # base is left alone: installing a revision must not move defaultRevision.
    if settings['revision']:
        for values in (istiod, cni, ztunnel):
            if values is not None:
                values['revision'] = settings['revision']
    return {'profile': profile, 'base': base, 'istiod': istiod, 'cni': cni, 'ztunnel': ztunnel, 'node_namespace': settings['namespace']}


def apply_platform(cluster, platform):
    """Set the cluster's platform and the chart values it needs (in place).

    OpenShift: every chart gets ``global.platform: openshift``, which selects the charts' own openshift profile (multus
    CNI, ``pilot.cni.enabled``, SELinux type, ``trustedZtunnelNamespace``); sidecars there need the istio-cni node agent
    (OpenShift's SCCs refuse the privileged istio-init container), which the charts grant the ``privileged`` SCC when
    the platform is openshift; node agents go to kube-system. ztunnel's RBAC template reads the top-level ``platform``.
    """
    cluster['platform'] = platform
    if platform != 'openshift':
        return cluster
    install = cluster['install']
    if install['cni'] is None:
        install['cni'] = {}
        revision = install['istiod'].get('revision')
        if revision:
            install['cni']['revision'] = revision
    for chart in ('base', 'istiod', 'cni', 'ztunnel'):
        values = install[chart]
        if values is not None:
            values.setdefault('global', {})['platform'] = platform
    if install['ztunnel'] is not None:
        install['ztunnel']['platform'] = platform
    install['node_namespace'] = OPENSHIFT_NODE_NAMESPACE
    return cluster


MIN_KUBERNETES = (1, 29)


def check_live(plan, facts, min_kubernetes=MIN_KUBERNETES):
    """Preflight on what the clusters said (cluster_info results): every unreachable, too old or badly
    addressed cluster at once. Fills each cluster's api_server from its context when the inventory has none.

    facts: hostname -> {'reachable', 'error', 'server', 'minor': [major, minor], ...}.
    Returns the plan (updated in place); raises MeshError with every problem.
    """
    problems = []
    for name in sorted(plan['clusters']):
        cluster = plan['clusters'][name]
        fact = facts.get(name) or {}
        if not fact.get('reachable'):
            problems.append(Problem(name, 'kube_context', 'cluster unreachable through context %r: %s; check the context, kubeconfig and '
                                    'credentials' % (cluster['context'], fact.get('error') or 'no answer')))
            continue
        minor = tuple(fact.get('minor') or (0, 0))
        if minor < min_kubernetes:
            problems.append(Problem(name, 'kube_context', 'Kubernetes %s is too old; this collection needs %d.%d or later'
                                    % (fact.get('version'), min_kubernetes[0], min_kubernetes[1])))
        if not cluster['api_server']:
            reason = check_api_server(fact.get('server') or '', plan['allow_loopback_api_server'])
            if reason:
                problems.append(Problem(name, 'istio_api_server', 'the API server of context %r (%s) cannot go into remote secrets: %s; set '
                                        'istio_api_server to the URL other clusters reach it by' % (cluster['context'], fact.get('server'), reason)))
            else:
                cluster['api_server'] = fact['server']
        if plan['model'] != 'ambient' and fact.get('ztunnel_namespaces'):
            # A sidecar-mode run would reinstall istiod without ambient and leave ztunnel behind (or, adding a
            # cluster, install a sidecar-mode cluster into an ambient mesh).
            problems.append(Problem(name, 'istio_model', 'the cluster runs Istio in ambient mode (DaemonSet ztunnel in %s) but this run '
                                    'plans the %s model; set istio_model=ambient (or run playbooks/ambient.yml)'
                                    % (', '.join(fact['ztunnel_namespaces']), plan['model'])))
        detected = 'openshift' if fact.get('openshift') else 'kubernetes'
        if cluster['platform'] is None:
            apply_platform(cluster, detected)
        elif cluster['platform'] != detected:
            problems.append(Problem(name, 'istio_platform', '%r, but the cluster %s; remove istio_platform (auto detects it) or fix the '
                                    'context' % (cluster['platform'], 'serves OpenShift\'s config.openshift.io API group'
                                                 if detected == 'openshift' else 'does not serve OpenShift\'s config.openshift.io API group')))
    if problems:
        raise MeshError(problems)
    _plan_revisions(plan, facts)
    problems = check_tags(plan, facts)
    if problems:
        raise MeshError(problems)
    return plan


def revision_label(revision):
    """The istio.io/rev label value of a control plane: the revision, or 'default' for the unrevisioned one."""
    return revision or 'default'


def _plan_revisions(plan, facts):
    """Revisions share the mesh's objects (base chart, cacerts, remote secrets, reader token, east-west gateway,
    istiod-gateway, cross-network-gateway, namespace): a revision uninstalled while another one stays anywhere in the
    mesh removes only its own objects, and hands the default-revision role to the one that stays ('default' when it
    is among them, else the first by name)."""
    installed = dict((name, sorted(set((facts.get(name) or {}).get('revisions') or []))) for name in sorted(plan['clusters']))
    this = revision_label(plan['revision'])
    others = sorted(set(rev for revs in installed.values() for rev in revs) - set([this]))
    plan['installed_revisions'] = installed
    plan['other_revisions'] = others
    plan['successor_revision'] = ('default' if 'default' in others else others[0]) if others else None
    if plan['revision'] and plan['install_method'] == 'helm':
        for name, cluster in plan['clusters'].items():
            if 'default' not in installed[name]:
                # The base chart's default validator calls istiod-<defaultRevision> (chart default: 'default', i.e.
                # the Service istiod): in a cluster without the unrevisioned control plane it must name a revision
                # that exists, else every Istio object is refused once istiod sets its failurePolicy to Fail. The
                # first revision installed keeps it (the control-plane role keeps a value the release already has).
                cluster['install']['base']['defaultRevision'] = (installed[name] or [plan['revision']])[0]


# --- upgrades -------------------------------------------------------------------------------------

UPGRADE_STAGES = ('install', 'canary', 'promote', 'remove', 'rollback', 'all')
# Istio's rules: a canary (revision-based) upgrade may skip one minor release (1.x to 1.x+2); an in-place one goes one
# minor release at a time. Neither goes down: a canary upgrade's way back is its rollback stage.
MAX_CANARY_MINORS = 2
DEFAULT_STABLE_TAG = 'prod-stable'
DEFAULT_CANARY_TAG = 'prod-canary'


def upgrade_revision(version):
    """The revision name of an Istio version, as Istio's docs name them: 1.30.3 -> 1-30-3."""
    return re.sub(r'[^a-z0-9]+', '-', version.lower()).strip('-')


def plan_upgrade(plan, facts, options):
    """The canary upgrade's stage against what the clusters hold (cluster_info results with proxy counts).

    options: to (istio_upgrade_to), revision (istio_upgrade_revision), stage (istio_upgrade_stage), restart
    (istio_upgrade_restart), stable_tag, canary_tag, charts (istio_upgrade_charts, where the new release's charts are).
    Returns {stage, model, from: {version, revision}, to: {version, revision, charts}, stable_tag, canary_tag, restart,
    steps: {install: bool, canary/promote/rollback: tags or None, remove: revision or None}, inventory_after, summary};
    raises MeshError with every problem.
    """
    problems = []
    stage = options.get('stage') or 'all'
    if stage not in UPGRADE_STAGES:
        problems.append(Problem(None, 'istio_upgrade_stage', '%r is not a stage; use one of %s' % (stage, ', '.join(UPGRADE_STAGES))))
    restart = _boolish(problems, 'istio_upgrade_restart', options.get('restart'), False)
    stable = _dns_label(problems, None, 'istio_upgrade_stable_tag', options.get('stable_tag'), DEFAULT_STABLE_TAG, 'tag name', DEFAULT_STABLE_TAG)
    canary = _dns_label(problems, None, 'istio_upgrade_canary_tag', options.get('canary_tag'), DEFAULT_CANARY_TAG, 'tag name', DEFAULT_CANARY_TAG)
    if stable == canary:
        problems.append(Problem(None, 'istio_upgrade_canary_tag', 'is the stable tag too (%r); the canary stage needs a tag of its own' % stable))
    if plan['install_method'] != 'helm':
        problems.append(Problem(None, 'istio_install_method', 'upgrades are planned for the Helm method; %r is not supported by '
                                'playbooks/upgrade.yml yet' % plan['install_method']))
    if plan['model'] == 'ambient':
        problems.append(Problem(None, 'istio_model', 'ambient meshes are not upgraded by playbooks/upgrade.yml yet (ztunnel and '
                                'istio-cni are shared by the revisions and upgrade in place)'))
    to_raw = options.get('to')
    to = parse_version(to_raw) if isinstance(to_raw, str) and to_raw else None
    if to is None:
        problems.append(Problem(None, 'istio_upgrade_to', '%s is not an Istio version; set it to the release to upgrade to, quoted, '
                                'e.g. istio_upgrade_to: "1.30.3"' % _show(to_raw)))
    current = parse_version(plan['version']) if plan['version'] else None
    if current is None:
        problems.append(Problem(None, 'istio_version', 'is unset: the upgrade starts from the version the inventory says runs; set it '
                                '(e.g. istio_version: "1.29.6")'))
    elif to is not None:
        if to[0] != current[0] or to <= current:
            problems.append(Problem(None, 'istio_upgrade_to', '%s is not newer than istio_version %s; a canary upgrade goes to a newer '
                                    'release (its rollback stage is the way back)' % (to_raw, plan['version'])))
        elif to[1] - current[1] > MAX_CANARY_MINORS:
            jump = to[1] - current[1]
            problems.append(Problem(None, 'istio_upgrade_to', '%s is %d minor releases after %s; Istio supports canary upgrades across '
                                    'at most %d: upgrade to %d.%d first'
                                    % (to_raw, jump, plan['version'], MAX_CANARY_MINORS, current[0], current[1] + MAX_CANARY_MINORS)))
    old = revision_label(plan['revision'])
    new = _dns_label(problems, None, 'istio_upgrade_revision', options.get('revision'),
                     upgrade_revision(to_raw) if to is not None else '', 'revision', '1-30-3')
    if new and new == old:
        problems.append(Problem(None, 'istio_upgrade_revision', '%r is the revision running now (istio_revision); the new release needs '
                                'a revision of its own' % new))
    for name in set([new, old]) & set([stable, canary]):
        problems.append(Problem(None, 'istio_upgrade_revision', 'a revision and a tag share the name %r; name them differently' % name))
    tags = dict(plan['revision_tags'] or {})
    if tags.get(stable) != old:
        problems.append(Problem(None, 'istio_revision_tags', 'must declare the stable tag on the running revision (%s: %s), the tag your '
                                'workloads\' namespaces are labelled with (istio.io/rev=%s); it says %s'
                                % (stable, old, stable, _show(tags.get(stable)))))
    charts = options.get('charts')
    if stage in ('install', 'remove', 'all') and not charts:
        # remove: the new revision takes over the shared charts (base, east-west gateway) with its release's charts.
        problems.append(Problem(None, 'istio_upgrade_charts', 'is unset: say where the %s charts are (a directory or a chart repository '
                                'URL)' % to_raw))
    if problems:
        raise MeshError(problems)

    has = dict((name, set((facts.get(name) or {}).get('revisions') or [])) for name in sorted(plan['clusters']))
    live_tags = dict((name, (facts.get(name) or {}).get('revision_tags') or {}) for name in has)
    proxies = dict((name, (facts.get(name) or {}).get('proxy_revisions') or {}) for name in has)
    old_anywhere = any(old in revs for revs in has.values())
    new_anywhere = any(new in revs for revs in has.values())
    canary_tags = dict(tags, **{canary: new})
    promote_tags = dict(tags, **{stable: new, canary: new})
    rollback_tags = dict(tags, **{stable: old, canary: old})
    steps = {'install': False, 'canary': None, 'promote': None, 'rollback': None, 'remove': None}

    def need(revision, why):
        for name, revs in has.items():
            if revision not in revs:
                problems.append(Problem(name, 'istio_upgrade_stage', 'revision %s is not installed here (it has %s); %s'
                                        % (revision, ', '.join(sorted(revs)) or 'none', why)))

    def proxies_left(revision, why):
        for name in sorted(proxies):
            if proxies[name].get(revision):
                problems.append(Problem(name, 'istio_upgrade_stage', '%d pod(s) still run proxies of revision %s; %s'
                                        % (proxies[name][revision], revision, why)))

    if stage in ('install', 'all'):
        need(old, 'istio_revision must name the revision that runs now')
        _check_running_version(plan, facts, old, problems)
        steps['install'] = True
    if stage in ('canary', 'promote'):
        need(new, 'run istio_upgrade_stage=install first')
    if stage in ('canary', 'all'):
        steps['canary'] = canary_tags
    if stage in ('promote', 'all'):
        steps['promote'] = promote_tags
    if stage == 'all' and not restart and any(p.get(old) for p in proxies.values()):
        problems.append(Problem(None, 'istio_upgrade_restart', 'stage all removes revision %s, which pods still use: set '
                                'istio_upgrade_restart=true to restart them on %s, or run the stages one by one' % (old, new)))
    if stage == 'remove' and old_anywhere:
        need(new, 'run istio_upgrade_stage=install first')
        for name in sorted(live_tags):
            wrong = [t for t in (stable, canary) if live_tags[name].get(t) != new]
            if wrong:
                problems.append(Problem(name, 'istio_upgrade_stage', 'tag(s) %s do not point at %s yet; run istio_upgrade_stage=promote first'
                                        % (', '.join(wrong), new)))
        proxies_left(old, 'restart them on %s first (istio_upgrade_stage=promote with istio_upgrade_restart=true)' % new)
    if stage in ('remove', 'all') and (old_anywhere or stage == 'all'):
        steps['remove'] = old
    if stage == 'rollback':
        if not old_anywhere:
            problems.append(Problem(None, 'istio_upgrade_stage', 'revision %s was removed: there is nothing to roll back to; upgrade again '
                                    'instead' % old))
        else:
            need(old, 'the old revision must be there in every cluster to roll back to it')
        steps['rollback'] = rollback_tags
        if new_anywhere:
            steps['remove'] = new
    if problems:
        raise MeshError(problems)
    done = stage in ('remove', 'all')
    after = {'istio_version': to_raw, 'istio_revision': new, 'istio_revision_tags': promote_tags} if done else None
    return {'stage': stage, 'model': plan['model'], 'from': {'version': plan['version'], 'revision': old},
            'to': {'version': to_raw, 'revision': new, 'charts': charts}, 'stable_tag': stable, 'canary_tag': canary,
            'restart': restart, 'steps': steps, 'inventory_after': after,
            'summary': _upgrade_summary(stage, steps, old, new, to_raw, restart, old_anywhere)}


def _check_running_version(plan, facts, revision, problems):
    """The running revision's istiod chart must be at istio_version (else the skew rules would judge the wrong jump)."""
    release = 'istiod' if revision == 'default' else 'istiod-%s' % revision
    for name in sorted(plan['clusters']):
        found = ((facts.get(name) or {}).get('helm_releases') or {}).get(release) or {}
        if found.get('app_version') and found['app_version'] != plan['version']:
            problems.append(Problem(name, 'istio_version', '%r, but release %s runs %s here; set istio_version to what runs'
                                    % (plan['version'], release, found['app_version'])))


def _upgrade_summary(stage, steps, old, new, to, restart, old_anywhere):
    lines = []
    if steps['install']:
        lines.append('install Istio %s as revision %s beside %s in every cluster (base chart and east-west gateways follow it)' % (to, new, old))
    for step, moved in (('canary', 'canary tag'), ('promote', 'stable and canary tags')):
        if steps[step] is not None:
            lines.append('move the %s to %s%s' % (moved, new, '; restart the workloads of their namespaces' if restart else ''))
    if steps['rollback'] is not None:
        lines.append('move the stable and canary tags back to %s%s' % (old, '; restart the workloads of their namespaces' if restart else ''))
    if steps['remove']:
        lines.append('remove revision %s from every cluster' % steps['remove'])
    elif stage == 'remove' and not old_anywhere:
        lines.append('revision %s is already gone: nothing to do' % old)
    return lines
