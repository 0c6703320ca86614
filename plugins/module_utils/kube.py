# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access for meshops.istio modules, on kubernetes.core's client.

Writes happen only on a difference: an object that already holds the desired fields gets no request other
than the read, so a converged mesh sees zero writes. In check mode nothing is written at all (not even a
server-side dry-run), and the result says what would change. Secret values never appear in a diff.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import functools
import hashlib
import re

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

try:
    from kubernetes import client as k8s_api
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
except ImportError:
    # Reported by AnsibleK8SModule's requires("kubernetes") before anything here runs.
    k8s_api = None
    NotFoundError = ResourceNotFoundError = Exception
try:
    from urllib3.exceptions import HTTPError as TransportError
except ImportError:  # urllib3 comes with the kubernetes client; without it nothing here runs
    TransportError = OSError

MANAGED_BY = {"app.kubernetes.io/managed-by": "meshops.istio"}
# Fields compared and written as a whole (keys missing from the desired object are removed).
EXACT_FIELDS = ("data", "stringData")
AUTH_KEYS = tuple(AUTH_ARG_SPEC)


def auth_argument_spec():
    """kubernetes.core's connection options (kubeconfig, context, host, ...), for a module's own cluster."""
    return copy.deepcopy(AUTH_ARG_SPEC)


def auth_from_params(params):
    return dict((k, params.get(k)) for k in AUTH_KEYS if params.get(k) is not None)


def redact(obj):
    """A copy of obj safe to show: Secret payload values become a short fingerprint."""
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    for field in EXACT_FIELDS:
        if isinstance(out.get(field), dict):
            out[field] = dict((k, fingerprint(v)) for k, v in out[field].items())
    return out


def fingerprint(value):
    if value is None:
        return None
    data = value.encode("utf-8") if not isinstance(value, bytes) else value
    return "<redacted sha256:%s>" % hashlib.sha256(data).hexdigest()[:12]


def contains(current, desired, path=(), item_subset=False):
    """True when every field of desired is in current with the same value (dicts compared as subsets, except
    the exact fields, lists and scalars compared whole).

    item_subset: for objects the API server fills with defaults inside list items (CRD schemas, Gateway listeners,
    admission policy rules): a list matches when it has as many items as desired and each item contains the
    desired one, and a desired None matches a missing key."""
    if isinstance(desired, dict) and isinstance(current, dict) and (not path or path[-1] not in EXACT_FIELDS):
        return all(contains(current[k], v, path + (k,), item_subset) if k in current else (item_subset and v is None)
                   for k, v in desired.items())
    if item_subset and isinstance(desired, list) and isinstance(current, list):
        return len(current) == len(desired) and all(contains(c, d, path + (i,), item_subset)
                                                    for i, (c, d) in enumerate(zip(current, desired)))
    return current == desired


def managed_view(obj, desired):
    """The part of obj that desired manages, for diffs: the same keys, nested."""
    if obj is None:
        return None
    if not isinstance(desired, dict) or not isinstance(obj, dict):
        return obj
    view = {}
    for k, v in desired.items():
        if k in obj:
            view[k] = obj[k] if k in EXACT_FIELDS else managed_view(obj[k], v)
    return view


class KubeError(Exception):
    pass


def _reason(e):
    """The short cause of a transport error ("[Errno 111] Connection refused"), without urllib3's object reprs."""
    m = re.search(r"\[Errno -?\d+\][^'\")]*", str(e))
    return m.group(0).strip() if m else type(e).__name__


def _reachable(method):
    """A transport failure (API server down, connection reset) becomes a KubeError naming the cluster and its API
    server: a run that loses a cluster halfway says which one, not only a urllib3 traceback."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (TransportError, OSError) as e:
            raise KubeError("%s: API server %s unreachable (%s)" % (self.label, self.k8s.configuration.host, _reason(e)))
    return call


class Kube(object):
    """One cluster, addressed like kubernetes.core does (kubeconfig, context, ...)."""

    def __init__(self, label=None, **auth):
        self.label = label or auth.get("context") or "cluster"
        try:
            self.k8s = get_api_client(**auth)
        except (TransportError, OSError) as e:
            # Without a discovery cache the client asks the server at once.
            raise KubeError("%s: API server unreachable through context %s (%s)" % (self.label, auth.get("context"), _reason(e)))
        self.api_client = self.k8s.client.client

    def core(self):
        return k8s_api.CoreV1Api(self.api_client)

    def resource(self, api_version, kind):
        return self.k8s.resource(kind, api_version)

    @_reachable
    def get(self, api_version, kind, name, namespace=None):
        """The object, or None when it does not exist, or its kind is not served (yet: CRDs a chart installs)."""
        try:
            return self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except (NotFoundError, ResourceNotFoundError):
            return None

    @_reachable
    def list(self, api_version, kind, namespace=None, label_selector=None):
        kw = {"namespace": namespace} if namespace else {}
        if label_selector:
            kw["label_selector"] = label_selector
        return [i.to_dict() for i in self.resource(api_version, kind).get(**kw).items]

    @_reachable
    def ensure(self, desired, check_mode=False, item_subset=False):
        """Make the object hold the desired fields. Returns a dict: changed, action, before, after (managed
        fields only, Secret values redacted), and the resulting object as `object` (projected in check mode).
        item_subset: compare lists item by item as subsets (see contains), for kinds the server defaults inside lists."""
        md = desired["metadata"]
        api_version, kind, name, ns = desired["apiVersion"], desired["kind"], md["name"], md.get("namespace")
        current = self.get(api_version, kind, name, ns)
        if current is not None and contains(current, desired, item_subset=item_subset):
            view = managed_view(current, desired)
            return dict(changed=False, action="none", before=redact(view), after=redact(view), object=current)
        if current is None:
            # A desired None means "absent" (see contains): nothing to send on create.
            action, after = "create", _without_none(desired)
            if not check_mode:
                try:
                    resource = self.resource(api_version, kind)
                except ResourceNotFoundError:
                    raise KubeError("%s %s is not served by %s; install what defines it first (for Istio kinds, the "
                                    "base chart's CRDs)" % (api_version, kind, self.label))
                after = resource.create(body=after, namespace=ns).to_dict()
        else:
            action = "patch"
            patch = copy.deepcopy(desired)
            for field in EXACT_FIELDS:
                # A merge patch keeps keys it does not mention; remove the ones we no longer want.
                if isinstance(patch.get(field), dict) and isinstance(current.get(field), dict):
                    for k in current[field]:
                        patch[field].setdefault(k, None)
            after = _merged(current, desired)
            if not check_mode:
                after = self.resource(api_version, kind).patch(
                    body=patch, name=name, namespace=ns, content_type="application/merge-patch+json").to_dict()
        return dict(changed=True, action=action, before=redact(managed_view(current, desired)),
                    after=redact(managed_view(after, desired)), object=after)

    @_reachable
    def delete(self, api_version, kind, name, namespace=None, check_mode=False):
        """Delete if present; returns True when something was (or would be) deleted."""
        if self.get(api_version, kind, name, namespace) is None:
            return False
        if not check_mode:
            try:
                self.resource(api_version, kind).delete(name=name, namespace=namespace)
            except NotFoundError:
                return False
        return True


def _without_none(obj):
    if not isinstance(obj, dict):
        return copy.deepcopy(obj)
    return dict((k, _without_none(v)) for k, v in obj.items() if v is not None)


def _merged(current, desired):
    """What a merge patch of desired makes of current (RFC 7386: null removes the key)."""
    out = copy.deepcopy(current)
    for k, v in desired.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict) and k not in EXACT_FIELDS:
            out[k] = _merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def object_ref(obj, action, cluster=None):
    """What a module reports for an object it wrote (or, in check mode, would write): kind, namespace ('' when
    cluster-scoped), name and action; cluster names another cluster than the module's own (remote secrets)."""
    md = obj.get("metadata") or {}
    ref = dict(kind=obj.get("kind"), namespace=md.get("namespace") or "", name=md.get("name"), action=action)
    if cluster:
        ref["cluster"] = cluster
    return ref


def written(refs):
    """The refs that were (or would be) written: action other than none."""
    return [r for r in refs if r.get("action") not in (None, "none")]


def diff_of(results):
    """Ansible's diff (before/after) for a list of ensure() results, keyed by object."""
    before, after = {}, {}
    for r in results:
        if r["changed"]:
            key = r.get("key") or "object"
            before[key] = r["before"]
            after[key] = r["after"]
    return {"before": before, "after": after}
