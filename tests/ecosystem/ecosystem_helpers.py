"""Helpers of the ecosystem tests (a uniquely named module: `from conftest import ...` would pick up whichever
conftest.py pytest imported last when tests/ecosystem and tests/integration run in one session)."""
import subprocess
import sysconfig
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def run(*cmd, env=None, check=True, timeout=600, cwd=REPO):
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return proc


def venv_collections():
    """The ansible_collections directory of the `ansible` package in this Python's site-packages."""
    path = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
    assert (path / "kubernetes" / "core" / "MANIFEST.json").is_file(), \
        f"kubernetes.core not found under {path} (pip install -r requirements-dev.txt)"
    return path
