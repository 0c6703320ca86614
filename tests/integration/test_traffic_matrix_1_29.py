"""Istio 1.29.6, released charts and binaries, real proxies: primary-remote on two networks (traffic_matrix: converge
with traffic, 0-write re-run, verify.yml, uninstall to the pre-install object set). Multi-primary on two networks runs
on 1.29.6 in test_canary_upgrade.py (converge with traffic, then upgraded to 1.30.3 under a request loop)."""
import pytest

import traffic_matrix

RELEASE = "1.29.6"


@pytest.mark.parametrize("model", ["primary-remote-multi-network"])
def test_flow(tmp_path_factory, model):
    traffic_matrix.check_flow(traffic_matrix.run_flow(tmp_path_factory, model, RELEASE))
