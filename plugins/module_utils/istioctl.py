# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for installing Istio with istioctl (IstioOperator); no Ansible, no cluster access.

``istioctl install`` re-applies every object, so the module runs it only when the IstioOperator or the istioctl
version changed: their fingerprint is kept in a ConfigMap next to the control plane.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json

API_VERSION = "install.istio.io/v1alpha1"
KIND = "IstioOperator"
STATE_NAME = "meshops-istio-install"
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshops.istio"}

# Top-level fields of IstioOperator spec.values (operator/pkg/apis/values_types.proto) that mean the same in
# every chart. istioctl rejects any other top-level field.
SHARED_KEYS = frozenset(("global", "revision", "profile", "meshConfig", "defaultRevision", "revisionTags", "ownerName",
                         "compatibilityVersion", "experimental", "gatewayClasses"))
# Chart -> (where IstioOperator nests the chart's own settings, top-level fields it keeps as they are).
# The istiod chart reads pilot.* as top-level values (zzy_descope_legacy.yaml), so Helm's env, resources, cni, ...
# become pilot.env, pilot.resources, pilot.cni, ...
CHARTS = {
    "base": ("base", SHARED_KEYS),
    "istiod": ("pilot", SHARED_KEYS | frozenset(("pilot", "sidecarInjectorWebhook", "istiodRemote", "telemetry", "base"))),
    "cni": ("cni", SHARED_KEYS),
    "ztunnel": ("ztunnel", SHARED_KEYS),
}


class IstioctlError(Exception):
    pass


def merge(base, overlay):
    """Recursive dict merge (overlay wins, lists replaced); returns a new dict."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _drop_none(value):
    # A Helm null unsets a default; istioctl has no such meaning, so leave the field out.
    if isinstance(value, dict):
        return dict((k, _drop_none(v)) for k, v in value.items() if v is not None)
    return value


def values_from_charts(charts):
    """IstioOperator spec.values from Helm values per chart (base, istiod, cni, ztunnel; None = not installed)."""
    unknown = sorted(set(charts or {}) - set(CHARTS))
    if unknown:
        raise IstioctlError("no IstioOperator mapping for the chart(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(CHARTS))))
    values = {}
    for chart in ("base", "istiod", "cni", "ztunnel"):
        chart_values = (charts or {}).get(chart)
        if not chart_values:
            continue
        root, kept = CHARTS[chart]
        nested, top = {}, {}
        for k, v in _drop_none(chart_values).items():
            if k == root:
                nested = merge(nested, v) if isinstance(v, dict) else nested
            elif k in kept:
                top[k] = v
            else:
                nested[k] = v
        values = merge(values, top)
        if nested:
            values = merge(values, {root: nested})
    return values


def render(iop, namespace, revision=None, chart_values=None):
    """The IstioOperator to install: iop (its spec values win) over the converted chart values, with the
    namespace and revision set; conflicting settings raise IstioctlError."""
    iop = copy.deepcopy(iop or {})
    if iop.get("apiVersion", API_VERSION) != API_VERSION or iop.get("kind", KIND) != KIND:
        raise IstioctlError("iop must be an %s %s, got %s %s" % (API_VERSION, KIND, iop.get("apiVersion"), iop.get("kind")))
    spec = iop.get("spec") or {}
    spec["values"] = merge(values_from_charts(chart_values), spec.get("values") or {})
    glob = spec["values"].setdefault("global", {})
    # istioctl places everything by values.global.istioNamespace, not by spec.namespace.
    if glob.setdefault("istioNamespace", namespace) != namespace:
        raise IstioctlError("iop sets values.global.istioNamespace %r but namespace is %r" % (glob["istioNamespace"], namespace))
    for where, value in (("spec.revision", spec.get("revision")), ("spec.values.revision", spec["values"].get("revision"))):
        if value and value != (revision or ""):
            raise IstioctlError("iop sets %s %r but revision is %r" % (where, value, revision or ""))
    if revision:
        spec["revision"] = spec["values"]["revision"] = revision
    out = {"apiVersion": API_VERSION, "kind": KIND, "spec": spec}
    if iop.get("metadata"):
        out["metadata"] = iop["metadata"]
    return out


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def fingerprint(iop, istioctl_version):
    return hashlib.sha256(canonical({"iop": iop, "istioctl": istioctl_version}).encode("utf-8")).hexdigest()


def state_name(revision=None):
    return "%s-%s" % (STATE_NAME, revision) if revision else STATE_NAME


def state_configmap(namespace, revision, iop, istioctl_version):
    """Where the installed IstioOperator is remembered: its fingerprint, and the IOP itself for diffs."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": state_name(revision), "namespace": namespace, "labels": dict(MANAGED_BY)},
            "data": {"fingerprint": fingerprint(iop, istioctl_version), "istioctl-version": istioctl_version,
                     "iop.json": json.dumps(iop, sort_keys=True, indent=2)}}


def stored(configmap):
    """(fingerprint, iop, istioctl version) from a state ConfigMap, or Nones."""
    data = (configmap or {}).get("data") or {}
    try:
        iop = json.loads(data["iop.json"]) if data.get("iop.json") else None
    except ValueError:
        iop = None
    return data.get("fingerprint"), iop, data.get("istioctl-version")


def control_plane_object(iop, namespace, revision=None):
    """(apiVersion, kind, name, namespace) of what proves the install exists: istiod's Deployment, or on a
    remote profile (no istiod) its injection webhook."""
    suffix = "-%s" % revision if revision else ""
    if (iop.get("spec") or {}).get("profile") == "remote":
        return "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-sidecar-injector" + suffix, None
    return "apps/v1", "Deployment", "istiod" + suffix, namespace


def parse_version(output):
    """istioctl's client version from `istioctl version --remote=false -o json`."""
    try:
        return json.loads(output)["clientVersion"]["version"]
    except (ValueError, KeyError, TypeError):
        raise IstioctlError("cannot read the istioctl version from: %s" % (output or "")[:300])


def connection_args(kubeconfig=None, context=None, impersonate_user=None, impersonate_groups=None):
    args = []
    if kubeconfig:
        args += ["--kubeconfig", kubeconfig]
    if context:
        args += ["--context", context]
    if impersonate_user:
        args += ["--as", impersonate_user]
    for group in impersonate_groups or ():
        args += ["--as-group", group]
    return args


def install_command(binary, iop_path, connection, timeout=None):
    cmd = [binary, "install", "-y", "-f", iop_path] + connection
    if timeout:
        cmd += ["--readiness-timeout", timeout]
    return cmd


# What `istioctl uninstall --revision R` says when it finds no istiod or webhook of revision R.
REVISION_NOT_FOUND = "could not find target revision"


def uninstall_command(binary, namespace, revision, connection):
    return [binary, "uninstall", "-y", "--revision", revision or "default", "--istioNamespace", namespace] + connection
