"""Istio 1.29.6, released charts and binaries, real proxies: multi-primary and primary-remote on two networks
(traffic_matrix: converge with traffic, 0-write re-run, verify.yml, uninstall to the pre-install object set)."""
import pytest

import traffic_matrix

RELEASE = "1.29.6"


@pytest.mark.parametrize("model", ["multi-primary-multi-network", "primary-remote-multi-network"])
def test_flow(tmp_path_factory, model):
    traffic_matrix.check_flow(traffic_matrix.run_flow(tmp_path_factory, model, RELEASE))
