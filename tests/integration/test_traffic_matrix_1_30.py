"""Istio 1.30.3, released charts and binaries, real proxies: primary-remote on one network, and the mixed inventory
(two primaries on two networks, the second with a remote)
(traffic_matrix: converge with traffic, 0-write re-run, verify.yml, uninstall to the pre-install object set).
Primary-remote on two networks on 1.30.3 runs the same flow installed with istioctl, test_traffic_istioctl.py (a
file of its own, so the two workers share the flows; the Helm install of that model is the 1.29.6 flow, and Helm and
istioctl give the same objects: test_install_method_equivalence.py). Multi-primary on two networks on 1.30.3:
test_traffic_multi_network.py runs the same steps on its mesh."""
import pytest

import traffic_matrix

RELEASE = "1.30.3"


@pytest.mark.parametrize("model", ["primary-remote", "mixed"])
def test_flow(tmp_path_factory, model):
    traffic_matrix.check_flow(traffic_matrix.run_flow(tmp_path_factory, model, RELEASE))
