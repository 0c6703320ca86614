"""istio_install_method: istioctl on Istio 1.30.3 with real proxies. The methods differ in the control plane only
(the release's istioctl installs an IstioOperator; east-west gateways come from the gateway chart either way), and
primary-remote on two networks has both kinds of it (a primary's, and a remote's whose proxies reach that istiod
through its gateway): traffic_matrix's flow (converge with traffic, 0-write re-run, verify.yml, uninstall to the
pre-install object set)."""
import traffic_matrix

RELEASE = "1.30.3"


def test_primary_remote_multi_network_flow(tmp_path_factory):
    traffic_matrix.check_flow(traffic_matrix.run_flow(tmp_path_factory, "primary-remote-multi-network", RELEASE,
                                                      {"istio_install_method": "istioctl"}))
