"""The tests of test_add_decommission.py on the ambient model (multi-primary on three networks, istio-cni and
ztunnel, east-west Gateways reached on HBONE port 15008): cluster3 is added to a running ambient mesh of cluster1 and
cluster2, then decommissioned, on a lab of its own. First, without istio_model, add-cluster.yml is refused by preflight
before any write: planned as multi-primary, it would install a sidecar-mode cluster into the ambient mesh."""
import pytest

import test_add_decommission as common

# The same tests, bound here so that they run on this module's flow (an ambient mesh on a lab of its own).
test_add_in_check_mode_writes_nothing = common.test_add_in_check_mode_writes_nothing
test_add_writes_only_its_remote_secret_on_the_existing_clusters = common.test_add_writes_only_its_remote_secret_on_the_existing_clusters
test_after_the_add_every_istiod_sees_every_cluster_and_gateway = common.test_after_the_add_every_istiod_sees_every_cluster_and_gateway
test_decommission_in_check_mode_writes_nothing = common.test_decommission_in_check_mode_writes_nothing
test_decommission_removes_only_its_secret_from_the_others = common.test_decommission_removes_only_its_secret_from_the_others
test_no_other_istiod_lists_the_decommissioned_cluster = common.test_no_other_istiod_lists_the_decommissioned_cluster
test_decommissioned_cluster_holds_what_it_held_before_the_install = common.test_decommissioned_cluster_holds_what_it_held_before_the_install


@pytest.fixture(scope="module")
def flow(lab3, tmp_path_factory):
    return common.start(lab3, tmp_path_factory.mktemp("add-ambient"), "ambient")


def test_add_without_istio_model_is_refused_before_any_write(lab3, flow):
    mark = lab3.mark()
    proc = lab3.playbook("add-cluster.yml", flow.unnamed, "-e", "istio_cluster=" + common.NEW)
    said = " ".join(proc.stdout.split())
    assert proc.returncode != 0, said[-3000:]
    for host in ("cluster1", "cluster2"):
        assert ("host %s: istio_model: the cluster runs Istio in ambient mode (DaemonSet ztunnel in istio-system) but this "
                "run plans the multi_primary model; set istio_model=ambient" % host) in said, said[-3000:]
    assert "host %s: istio_model" % common.NEW not in said
    assert all(n == 0 for n in lab3.writes(mark).values())
