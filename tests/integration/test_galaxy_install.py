"""The Galaxy tarball, installed as users install it, builds a verified mesh when its playbook is run by FQCN.

`ansible-galaxy collection build` makes the tarball, `ansible-galaxy collection install --no-deps` puts it in a
scratch collections path that holds nothing else but kubernetes.core (linked from the venv's `ansible` package,
since Galaxy is not reachable). A scratch ansible.cfg replaces the repository's (whose collections_path points at
this checkout), ANSIBLE_COLLECTIONS_PATH names only the scratch path, and the venv's site-packages collections are
not scanned, so every `meshops.istio.*` and `kubernetes.core.*` reference resolves to the installed copies.

A collection playbook runs by FQCN only when its file name is a valid identifier: `meshops.istio.multi_primary`
(playbooks/multi_primary.yml imports multi-primary.yml relative to itself) must work after install, the hyphenated
name cannot. The multi-primary run on a two-network lab must converge and pass its own verify step, and
`meshops.istio.verify` must pass afterwards.
"""
import json
import os
import sysconfig
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run

MODEL = "multi-primary-multi-network"
# Entry points by FQCN -> the playbook file they are (or import) inside the installed collection.
ENTRY_POINTS = {"multi_primary": "multi-primary.yml", "primary_remote": "primary-remote.yml", "verify": None}
# Paths that must never ship (hack/ansible-test.sh build checks the same).
NOT_SHIPPED = ("lab/", "benchmarks/", ".venv/", ".cache/", ".ci/", "hack/", "awx/")


def venv_collections():
    """The ansible_collections directory of the `ansible` package that provides ansible-playbook."""
    path = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
    assert (path / "kubernetes" / "core" / "MANIFEST.json").is_file(), \
        f"kubernetes.core not found under {path} (pip install -r requirements-dev.txt)"
    return path


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory):
    """Build and install the tarball; return the environment that sees only the installed collections."""
    d = tmp_path_factory.mktemp("galaxy")
    collections = d / "collections"
    cfg = d / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        f"collections_path = {collections}\n"
        # Not the ansible_collections of site-packages either: only what was installed above.
        "collections_scan_sys_path = false\n"
        "forks = 20\n"
        "interpreter_python = auto_silent\n"
        "stdout_callback = default\n"
        "callback_result_format = yaml\n"
        "retry_files_enabled = false\n"
        "[galaxy]\n"
        "server = http://127.0.0.1:9/unreachable\n"  # --no-deps: Galaxy must never be contacted
    )
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG"))}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")

    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    run("ansible-galaxy", "collection", "build", "--output-path", str(d / "dist"), str(REPO), env=env, cwd=d)
    tarball = d / "dist" / f"meshops-istio-{version}.tar.gz"
    assert tarball.is_file(), sorted(p.name for p in (d / "dist").iterdir())
    run("ansible-galaxy", "collection", "install", "--no-deps", "-p", str(collections), str(tarball), env=env, cwd=d)

    link = collections / "ansible_collections" / "kubernetes" / "core"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(venv_collections() / "kubernetes" / "core")
    return {"dir": d, "env": env, "tarball": tarball,
            "installed": collections / "ansible_collections" / "meshops" / "istio"}


def test_tarball_ships_the_collection_and_its_ee_metadata_only(galaxy):
    with tarfile.open(galaxy["tarball"]) as tar:
        names = {n[2:] if n.startswith("./") else n for n in tar.getnames()}
    bad = sorted(n for n in names if n.startswith(NOT_SHIPPED) or "__pycache__" in n.split("/"))
    assert not bad, f"the tarball ships {bad}"
    # ansible-builder reads these from the installed collection, so they must ship.
    for needed in ("MANIFEST.json", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
                   "requirements.txt", "bindep.txt", "playbooks/multi_primary.yml", "playbooks/multi-primary.yml",
                   "playbooks/primary_remote.yml", "playbooks/verify.yml"):
        assert needed in names, f"{needed} is not in the tarball"


def test_only_the_installed_collections_are_visible(galaxy):
    listing = json.loads(run("ansible-galaxy", "collection", "list", "--format", "json", env=galaxy["env"],
                             cwd=galaxy["dir"]).stdout)
    # ansible-core's own internal collections (ansible._protomatter, inside the ansible package) are always there.
    found = {name: Path(path) for path, colls in listing.items() for name in colls
             if not name.startswith("ansible._")}
    assert sorted(found) == ["kubernetes.core", "meshops.istio"], listing
    assert found["meshops.istio"] == galaxy["installed"].parent.parent, listing
    assert found["kubernetes.core"] == galaxy["installed"].parent.parent, listing


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_point_resolves_by_fqcn_inside_the_installed_collection(galaxy, name):
    proc = run("ansible-playbook", "--syntax-check", "-i", "localhost,", f"meshops.istio.{name}", env=galaxy["env"],
               cwd=galaxy["dir"])
    assert f"playbook: {galaxy['installed'] / 'playbooks' / (name + '.yml')}" in proc.stdout, proc.stdout
    imported = ENTRY_POINTS[name]
    if imported:
        # The underscore entry point imports the hyphenated playbook next to it (relative import after install).
        listed = run("ansible-playbook", "--list-tasks", "-i", "localhost,", f"meshops.istio.{name}",
                     env=galaxy["env"], cwd=galaxy["dir"]).stdout
        direct = run("ansible-playbook", "--list-tasks", "-i", "localhost,",
                     str(galaxy["installed"] / "playbooks" / imported), env=galaxy["env"], cwd=galaxy["dir"]).stdout
        assert listed.split("\n", 2)[2] == direct.split("\n", 2)[2], (listed, direct)


def test_hyphenated_names_are_not_fqcn_playbooks(galaxy):
    """Why the underscore entry points exist: `meshops.istio.multi-primary` is not a valid playbook FQCN."""
    proc = run("ansible-playbook", "--syntax-check", "-i", "localhost,", "meshops.istio.multi-primary",
               env=galaxy["env"], cwd=galaxy["dir"], check=False)
    assert proc.returncode != 0, proc.stdout


@pytest.fixture(scope="module")
def mesh(lab, galaxy):
    """The installed multi_primary playbook, run by FQCN on a two-network lab, then the verify playbook."""
    d = galaxy["dir"]
    inventory = d / "inventory.yml"
    lab.inventory(MODEL, inventory, d / "ca")
    env = dict(lab.env, **{k: v for k, v in galaxy["env"].items() if k.startswith("ANSIBLE_")})
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    out = {}
    for name in ("multi_primary", "verify"):
        out[name] = run("ansible-playbook", "-i", str(inventory), f"meshops.istio.{name}", env=env, cwd=d,
                        check=False)
    return out


def test_multi_primary_by_fqcn_converges_and_verifies(mesh):
    proc = mesh["multi_primary"]
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert "failed=0" in proc.stdout and "unreachable=0" in proc.stdout, proc.stdout[-3000:]
    # The playbook's own verify step ran on both primaries and saw the other cluster synced.
    assert "TASK [meshops.istio.verify : Every istiod sees every other cluster synced" in proc.stdout, proc.stdout[-6000:]
    assert "cluster1=synced" in proc.stdout and "cluster2=synced" in proc.stdout, proc.stdout[-6000:]


def test_verify_by_fqcn_passes(mesh):
    proc = mesh["verify"]
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-8000:]
    assert "failed=0" in proc.stdout and "synced" in proc.stdout, proc.stdout[-6000:]
