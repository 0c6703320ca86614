# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""changed_objects: per cluster, the objects a run wrote (in check mode: would write), from the modules' results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

NOT_WRITTEN = (None, "none", "keep")


def _helm_action(result):
    status = result.get("status") or {}
    if "values" in status and "revision" not in status:
        # Check mode: the helm module reports the release's current values, empty when it is not installed.
        return "upgrade" if (status.get("values") or {}).get("current") else "install"
    return "install" if str(status.get("revision", "")) == "1" else "upgrade"


def describe(obj):
    """'<action> <Kind> <namespace>/<name>' ('<action> <Kind> <name>' when cluster-scoped)."""
    where = "%s/%s" % (obj["namespace"], obj["name"]) if obj.get("namespace") else obj["name"]
    return "%s %s %s" % (obj["action"], obj["kind"], where)


def changed_objects(sources, hosts=None):
    """sources: a list of {host, result} (result: a registered module result); for a kubernetes.core.helm result
    also {release, namespace}, reported as one HelmRelease object. Objects a module wrote in another cluster carry
    that cluster's name (remote secrets). Returns {cluster: sorted descriptions}, every host in hosts included."""
    out = dict((h, set()) for h in (hosts or []))
    for source in sources or []:
        if not isinstance(source, dict) or "host" not in source:
            raise AnsibleFilterError("changed_objects: each source needs a host and a result, got %r" % (source,))
        result = source.get("result") or {}
        if not isinstance(result, dict) or result.get("skipped") or result.get("failed"):
            continue
        if source.get("release"):
            if result.get("changed"):
                out.setdefault(source["host"], set()).add(describe(dict(
                    kind="HelmRelease", namespace=source.get("namespace") or "", name=source["release"],
                    action=_helm_action(result))))
            continue
        for obj in result.get("objects") or []:
            # none: already as declared; keep: left alone on purpose (newer Gateway API CRDs). Neither is a write.
            if obj.get("action") in NOT_WRITTEN:
                continue
            out.setdefault(obj.get("cluster") or source["host"], set()).add(describe(obj))
    return dict((h, sorted(objs)) for h, objs in out.items())


class FilterModule(object):
    def filters(self):
        return {"changed_objects": changed_objects}
