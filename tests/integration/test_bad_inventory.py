"""Broken inventories fail in preflight, naming the host and the field, with 0 writes to any cluster."""
import copy

import pytest
import yaml

HOST2 = "cluster2"


def hv(inv, host):
    for group in inv["all"]["children"].values():
        if host in group.get("hosts", {}):
            return group["hosts"][host]
    raise KeyError(host)


def set_host(host, **values):
    def mutate(inv, _tmp):
        hv(inv, host).update(values)
    return mutate


def set_all(**values):
    def mutate(inv, _tmp):
        inv["all"]["vars"].update(values)
    return mutate


def both(*mutations):
    def mutate(inv, tmp):
        for m in mutations:
            m(inv, tmp)
    return mutate


def drop_host_var(host, key):
    def mutate(inv, _tmp):
        hv(inv, host).pop(key)
    return mutate


def move_to_remote(inv, _tmp):
    inv["all"]["children"].setdefault("istio_remote", {"hosts": {}})["hosts"][HOST2] = \
        inv["all"]["children"]["istio_primary"]["hosts"].pop(HOST2)


def in_both_groups(inv, _tmp):
    inv["all"]["children"]["istio_remote"] = {"hosts": {HOST2: None}}


def no_primary(inv, _tmp):
    inv["all"]["children"]["istio_remote"] = inv["all"]["children"].pop("istio_primary")


def same_context_as_cluster1(inv, _tmp):
    hv(inv, HOST2)["kube_context"] = hv(inv, "cluster1")["kube_context"]


def dead_api_server(inv, tmp):
    # A kubeconfig whose cluster2 context points at a port nobody listens on.
    kc = yaml.safe_load(open(inv["all"]["vars"]["kubeconfig"]))
    for c in kc["clusters"]:
        if c["name"] == hv(inv, HOST2)["kube_context"]:
            c["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp / "dead.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    hv(inv, HOST2)["kubeconfig"] = str(path)


CASES = {
    "kube_context missing": (drop_host_var(HOST2, "kube_context"), HOST2, "kube_context"),
    "kube_context empty": (set_host(HOST2, kube_context=""), HOST2, "kube_context"),
    "kube_context not a string": (set_host(HOST2, kube_context=["a", "b"]), HOST2, "kube_context"),
    "kube_context unknown": (set_host(HOST2, kube_context="no-such-context"), HOST2, "kube_context"),
    "api server unreachable": (dead_api_server, HOST2, "kube_context"),
    "cluster id invalid": (set_host(HOST2, istio_cluster_id="Cluster_2"), HOST2, "istio_cluster_id"),
    "cluster id duplicate": (set_host(HOST2, istio_cluster_id="cluster1"), HOST2, "istio_cluster_id"),
    "context duplicate": (same_context_as_cluster1, HOST2, "kube_context"),
    "network invalid": (set_host(HOST2, istio_network="Net 2"), HOST2, "istio_network"),
    "mesh id differs": (set_host(HOST2, istio_mesh_id="mesh2"), HOST2, "istio_mesh_id"),
    "mesh id invalid": (set_all(istio_mesh_id="Mesh_1"), "mesh", "istio_mesh_id"),
    "install method unknown": (set_all(istio_install_method="kubectl"), "mesh", "istio_install_method"),
    "revision reserved": (set_all(istio_revision="default"), "mesh", "istio_revision"),
    "revision invalid": (set_all(istio_revision="1.31"), "mesh", "istio_revision"),
    "namespace invalid": (set_all(istio_system_namespace="Istio_System"), "mesh", "istio_system_namespace"),
    "api server http": (set_host(HOST2, istio_api_server="http://203.0.113.2:6443"), HOST2, "istio_api_server"),
    "api server loopback": (both(set_all(istio_allow_loopback_api_server=False),
                                 set_host(HOST2, istio_api_server="https://127.0.0.1:6443")), HOST2, "istio_api_server"),
    "context server loopback": (set_all(istio_allow_loopback_api_server=False), "cluster1", "istio_api_server"),
    "loopback flag not a bool": (set_all(istio_allow_loopback_api_server="maybe"), "mesh", "istio_allow_loopback_api_server"),
    "host in both groups": (in_both_groups, HOST2, "group"),
    "no primary": (no_primary, "mesh", "group"),
    "remote in multi-primary": (move_to_remote, HOST2, "group"),
    "primary with a primary": (set_host(HOST2, istio_primary_cluster="cluster1"), HOST2, "istio_primary_cluster"),
    "token type unknown": (set_all(istio_token_type="forever"), "mesh", "istio_token_type"),
    "token expiration too short": (set_all(istio_token_type="token_request", istio_token_expiration=10), "mesh",
                                   "istio_token_expiration"),
    "version invalid": (set_all(istio_version="one.two"), "mesh", "istio_version"),
}


@pytest.fixture(scope="module")
def base_inventory(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("inv")
    return lab.inventory("multi-primary-multi-network", d / "base.yml", d / "ca")


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_inventory_fails_in_preflight(case, lab, base_inventory, tmp_path):
    mutate, host, field = CASES[case]
    inv = copy.deepcopy(base_inventory)
    mutate(inv, tmp_path)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    mark = lab.mark()
    proc = lab.playbook("multi-primary.yml", path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert f"{host}: {field}" in out or f"host {host}: {field}" in out, out[-3000:]
    writes = lab.writes(mark)
    assert writes and all(n == 0 for n in writes.values()), f"preflight must not write: {writes}"
