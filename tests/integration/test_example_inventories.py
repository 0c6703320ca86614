"""Every example inventory under inventories/ converges on a running lab with only its contexts changed.

Each example is copied, its kube_context values are replaced by the lab's contexts (nothing else in the copy
changes: ansible-inventory proves it), and what only the lab needs (its kubeconfig, local charts and helm, loopback
API servers, a scratch CA directory) comes from the lab's own inventory as `-e @lab-vars.yml`. Then
multi-primary.yml and verify.yml must succeed. Every example gets a fresh lab (slot $MESHLAB_SLOT).
"""
import json
import os
import re
import shutil

import pytest
import yaml

from conftest import REPO, Lab, run

EXAMPLES = sorted(p.parent.name for p in (REPO / "inventories").glob("*/hosts.yml"))
# The lab-only settings taken from `meshlab inventory` (all.vars); mesh settings stay the example's own.
LAB_VARS = ("kubeconfig", "istio_charts", "istio_helm_binary", "istio_istioctl_binary",
            "istio_allow_loopback_api_server", "istio_ca_key_size", "istio_gateway_api_crds")
# The playbook of an example, by the start of its directory name.
PLAYBOOKS = (("multi-primary", "multi-primary.yml"), ("primary-remote", "primary-remote.yml"), ("ambient", "ambient.yml"))
MESH_GROUPS = ("istio_primary", "istio_remote")


def ansible_inventory(inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    return json.loads(run("ansible-inventory", "-i", str(inventory), "--list", env=env).stdout)


def mesh_hosts(listing):
    """Hostnames in the mesh groups (their child groups included), sorted."""
    def hosts(group):
        g = listing.get(group) or {}
        return set(g.get("hosts") or ()).union(*(hosts(child) for child in g.get("children") or ()))
    return sorted(set().union(*(hosts(g) for g in MESH_GROUPS)))


def test_there_are_examples():
    assert {"multi-primary", "multi-primary-multi-network"} <= set(EXAMPLES), EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_is_for_real_clusters(example):
    """No lab values in the examples: placeholders for the contexts, no loopback allowance, no lab paths."""
    listing = ansible_inventory(REPO / "inventories" / example)
    hostvars = listing["_meta"]["hostvars"]
    hosts = mesh_hosts(listing)
    assert len(hosts) >= 2, hosts
    for host in hosts:
        hv = hostvars[host]
        assert hv.get("kube_context"), f"{example}: {host} has no kube_context"
        assert hv.get("ansible_connection") == "local", f"{example}: {host}"
        assert "istio_allow_loopback_api_server" not in hv, f"{example}: {host} allows loopback API servers"
        assert not any(k in hv for k in ("istio_charts", "istio_helm_binary", "istio_istioctl_binary")), \
            f"{example}: {host} sets a lab-only variable"
    values = json.dumps(hostvars)
    assert "meshlab" not in values and "127.0.0.1" not in values, f"{example} holds lab values: {values}"


@pytest.fixture
def fresh_lab(tmp_path):
    """A lab of its own for one test (two clusters), stopped afterwards."""
    home = tmp_path / "lab"
    env = dict(os.environ, MESHLAB_HOME=str(home))
    run("meshlab", "up", "--clusters", "2", "--dataplane", "simulated", env=env)
    try:
        yield Lab(home)
    finally:
        run("meshlab", "down", "--keep", env=env, check=False)


def change_contexts(inventory, contexts):
    """Replace each host's kube_context value (host -> new context) in the inventory's files, as a user would."""
    old = {host: hv["kube_context"] for host, hv in ansible_inventory(inventory)["_meta"]["hostvars"].items()
           if host in contexts}
    replaced = dict.fromkeys(old, 0)
    for path in sorted(inventory.rglob("*.yml")):
        text = path.read_text()
        for host, value in old.items():
            text, n = re.subn(r"(?m)^(\s*kube_context:\s*)(['\"]?)%s\2[ \t]*$" % re.escape(value),
                              lambda m, new=contexts[host]: m.group(1) + new, text)
            replaced[host] += n
        path.write_text(text)
    assert all(replaced.values()), f"no kube_context line found for {[h for h, n in replaced.items() if not n]}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_converges_with_only_its_contexts_changed(example, fresh_lab, tmp_path):
    lab = fresh_lab
    source = REPO / "inventories" / example
    inventory = tmp_path / "inventory"
    shutil.copytree(source, inventory)

    # The lab's contexts, in the order of its clusters, for the example's hosts in theirs.
    model = next(m for m, dummy in PLAYBOOKS if example.startswith(m))
    playbook = dict(PLAYBOOKS)[model]
    lab_inv = lab.inventory({"primary-remote": "primary-remote", "ambient": "ambient"}.get(model, "multi-primary"), tmp_path / "lab-inventory.yml",
                            tmp_path / "unused-ca")
    lab_contexts = sorted(hv["kube_context"] for group in lab_inv["all"]["children"].values() for hv in group["hosts"].values())
    before = ansible_inventory(source)
    hosts = mesh_hosts(before)
    assert len(hosts) == len(lab_contexts), f"{example} has {len(hosts)} clusters; the lab has {len(lab_contexts)}"
    contexts = dict(zip(hosts, lab_contexts))
    change_contexts(inventory, contexts)

    after = ansible_inventory(inventory)
    expected = json.loads(json.dumps(before))
    for host, context in contexts.items():
        expected["_meta"]["hostvars"][host]["kube_context"] = context
    assert after == expected, f"changing the contexts of {example} changed more than the contexts"

    lab_vars = {k: lab_inv["all"]["vars"][k] for k in LAB_VARS if k in lab_inv["all"]["vars"]}
    lab_vars["istio_ca_dir"] = str(tmp_path / "ca")
    lab_vars_file = tmp_path / "lab-vars.yml"
    lab_vars_file.write_text(yaml.safe_dump(lab_vars))

    for book in (playbook, "verify.yml"):
        proc = lab.playbook(book, inventory, "-e", f"@{lab_vars_file}")
        assert proc.returncode == 0, f"{example}: {book} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"
        assert "failed=0" in proc.stdout and "unreachable=0" in proc.stdout, proc.stdout[-3000:]

    # Each cluster is on the network the example gives it (host variable or network group; default network1).
    for host in hosts:
        want = after["_meta"]["hostvars"][host].get("istio_network", "network1")
        ns = json.loads(run("kubectl", "--context", contexts[host], "get", "namespace", "istio-system", "-o", "json",
                            env=lab.env).stdout)
        got = (ns["metadata"].get("labels") or {}).get("topology.istio.io/network")
        assert got == want, f"{example}: {host} is on network {got!r}, the example says {want!r}"
