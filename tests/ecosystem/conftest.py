"""Checks of how the collection ships into the Ansible ecosystem (Galaxy tarball, execution environment, AWX),
without a lab, a container runtime or network access. Run with `pytest tests/ecosystem` from the venv."""
import os

import pytest
import yaml

from ecosystem_helpers import REPO, run


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory):
    """An environment whose ansible.cfg is a scratch one (not the repository's) that sees no collections."""
    d = tmp_path_factory.mktemp("ansible")
    cfg = d / "ansible.cfg"
    cfg.write_text(f"[defaults]\ncollections_path = {d / 'none'}\ncollections_scan_sys_path = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG"))}
    env["ANSIBLE_CONFIG"] = str(cfg)
    return env


@pytest.fixture(scope="session")
def tarball(tmp_path_factory, ansible_env):
    """The Galaxy tarball of the work tree, as `ansible-galaxy collection build` makes it."""
    d = tmp_path_factory.mktemp("dist")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    run("ansible-galaxy", "collection", "build", "--output-path", str(d), str(REPO), env=ansible_env, cwd=d)
    path = d / f"meshops-istio-{version}.tar.gz"
    assert path.is_file(), sorted(p.name for p in d.iterdir())
    return path


@pytest.fixture(scope="session")
def installed(tmp_path_factory, ansible_env, tarball):
    """A directory holding ansible_collections/meshops/istio, the tarball installed with --no-deps (nothing else)."""
    d = tmp_path_factory.mktemp("collections")
    run("ansible-galaxy", "collection", "install", "--no-deps", "-p", str(d), str(tarball), env=ansible_env, cwd=d)
    assert (d / "ansible_collections" / "meshops" / "istio" / "MANIFEST.json").is_file()
    return d
