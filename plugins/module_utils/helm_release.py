# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Helm keeps about its deployed releases, reduced to what kubernetes.core.helm compares before an upgrade.

kubernetes.core.helm (without the helm-diff plugin) upgrades a release when its user-supplied values, its chart
(name-version) or its appVersion differ from the declared ones. Preflight reads the same facts from Helm's release
Secrets once per cluster, so that a release already in that state needs no module run (each costs several helm calls).
Values are kept as a digest only: they never pass through Ansible variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import hashlib
import json

# Labels Helm puts on its release Secrets (storage driver "secret").
SELECTOR = "owner=helm,status=deployed"
_GZIP_MAGIC = b"\x1f\x8b\x08"


def values_digest(values):
    """SHA-256 of a release's values in a canonical JSON form; None and {} are the same (no values)."""
    return hashlib.sha256(json.dumps(values or {}, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def decode(release_data):
    """The release JSON from a release Secret's data.release (base64, as the API returns it)."""
    raw = base64.b64decode(base64.b64decode(release_data))
    if raw[:3] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def summary(release):
    """{chart, app_version, revision, values_sha256} of a decoded release, as kubernetes.core.helm compares them."""
    meta = (release.get("chart") or {}).get("metadata") or {}
    return {"chart": "%s-%s" % (meta.get("name", ""), meta.get("version", "")), "app_version": meta.get("appVersion") or "",
            "revision": release.get("version", 0), "values_sha256": values_digest(release.get("config"))}


def deployed(secrets):
    """{release name: summary} from Helm release Secrets as dicts with labels and data (the deployed ones; the
    highest revision when Helm left several marked deployed)."""
    out = {}
    for secret in secrets:
        labels = secret.get("labels") or {}
        data = (secret.get("data") or {}).get("release")
        if labels.get("owner") != "helm" or labels.get("status") != "deployed" or not data:
            continue
        try:
            release = summary(decode(data))
        except (ValueError, TypeError, OSError):  # not a release Helm wrote: leave it to the helm module
            continue
        name = labels.get("name", "")
        if name not in out or release["revision"] > out[name]["revision"]:
            out[name] = release
    return out


def is_current(values, release, chart):
    """Whether kubernetes.core.helm would leave release as it is: same values, chart name-version and appVersion.
    chart: {name, version, appVersion} from the chart's Chart.yaml; release: a summary() or None."""
    if not release or not chart:
        return False
    return (release["values_sha256"] == values_digest(values)
            and release["chart"] == "%s-%s" % (chart.get("name", ""), chart.get("version", ""))
            and release["app_version"] == (chart.get("appVersion") or ""))
