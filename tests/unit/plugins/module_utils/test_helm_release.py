# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm release Secrets reduced to what kubernetes.core.helm compares, and the skip decision made from them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json

from ansible_collections.meshops.istio.plugins.module_utils import helm_release

CHART = {"name": "istiod", "version": "1.31.0", "appVersion": "1.31.0"}


def secret(name, revision, config, status="deployed", chart=None, gz=True):
    release = {"name": name, "version": revision, "config": config, "info": {"status": status},
               "chart": {"metadata": chart or CHART}, "manifest": "---\n"}
    raw = json.dumps(release).encode("utf-8")
    raw = gzip.compress(raw) if gz else raw
    # Helm base64-encodes the (gzipped) release; the API base64-encodes Secret data again.
    data = base64.b64encode(base64.b64encode(raw)).decode("ascii")
    return {"labels": {"owner": "helm", "name": name, "status": status, "version": str(revision)}, "data": {"release": data}}


def test_deployed_reads_helms_release_secrets():
    values = {"global": {"meshID": "mesh1", "network": "network1"}, "pilot": {"replicaCount": 1}}
    out = helm_release.deployed([secret("istiod", 1, values), secret("istiod", 2, values),
                                 secret("istiod", 3, {}, status="superseded"), secret("istio-base", 1, None, gz=False),
                                 {"labels": {"owner": "helm", "name": "x", "status": "deployed"}, "data": {"release": "bm90IGhlbG0="}}])
    assert sorted(out) == ["istio-base", "istiod"], "a Secret that does not decode is left to the helm module"
    assert out["istiod"] == {"chart": "istiod-1.31.0", "app_version": "1.31.0", "revision": 2,
                             "values_sha256": helm_release.values_digest(values)}
    assert "meshID" not in json.dumps(out), "values are only kept as a digest"
    assert out["istio-base"]["values_sha256"] == helm_release.values_digest({})


def test_is_current_only_for_same_values_chart_and_app_version():
    values = {"global": {"network": "network1", "meshID": "mesh1"}, "port": 15443}
    release = helm_release.deployed([secret("istiod", 4, values)])["istiod"]
    same_in_other_order = {"port": 15443, "global": {"meshID": "mesh1", "network": "network1"}}
    assert helm_release.is_current(same_in_other_order, release, CHART)
    assert not helm_release.is_current(dict(values, port=15444), release, CHART)
    assert not helm_release.is_current({"global": {"network": "network1"}}, release, CHART)
    assert not helm_release.is_current(values, release, dict(CHART, version="1.31.1"))
    assert not helm_release.is_current(values, release, dict(CHART, appVersion="1.31.1"))
    assert not helm_release.is_current(values, release, dict(CHART, name="gateway"))
    assert not helm_release.is_current(values, None, CHART), "not deployed: install"
    assert not helm_release.is_current(values, release, None), "chart unknown (a repository chart): ask helm"
    assert helm_release.is_current(None, helm_release.deployed([secret("b", 1, {})])["b"], CHART)
