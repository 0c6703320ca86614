"""The molecule scenarios, each on its own fresh lab: check mode, converge, idempotence, verify."""
import os

import pytest

from conftest import REPO, run

SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = run("molecule", "test", "-s", scenario, env=env, check=False, timeout=1800)
    assert proc.returncode == 0, f"molecule test -s {scenario} failed:\n{proc.stdout[-12000:]}\n{proc.stderr[-4000:]}"
