"""Converge benchmark (prints figures; not a test): from-empty converge of a 2-cluster multi-network multi-primary
mesh on a fresh meshlab, then the no-op re-run, each with the admin write requests per cluster.

    python benchmarks/converge.py [--clusters N] [--model multi-primary-multi-network] [--runs R]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sh(*cmd, env):
    return subprocess.run(list(cmd), env=env, cwd=REPO, check=True, capture_output=True, text=True).stdout


def timed_playbook(playbook, inventory, env):
    mark = sh("meshlab", "mark", env=env).strip()
    t0 = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(REPO / "playbooks" / playbook)], env=env,
                          cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{playbook} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    recap = [line for line in proc.stdout.splitlines() if "changed=" in line]
    changed = sum(int(line.split("changed=")[1].split()[0]) for line in recap)
    return seconds, json.loads(sh("meshlab", "writes", "--since", mark, "--json", env=env)), changed


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clusters", type=int, default=2)
    ap.add_argument("--model", default="multi-primary-multi-network")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, MESHLAB_HOME=f"{tmp}/lab", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
            for line in sh("meshlab", "env", "--istio", "master", env=env).splitlines():
                key, dummy, value = line[len("export "):].partition("=")
                env[key] = value.replace("$PATH", os.environ["PATH"])
            sh("meshlab", "up", "--clusters", str(args.clusters), "--dataplane", "simulated", env=env)
            try:
                inv = Path(tmp) / "inventory.yml"
                sh("meshlab", "inventory", "--model", args.model, "--ca-dir", f"{tmp}/ca", "-o", str(inv), env=env)
                first = timed_playbook("multi-primary.yml", inv, env)
                again = timed_playbook("multi-primary.yml", inv, env)
            finally:
                sh("meshlab", "down", env=env)
        print(f"run {run + 1}: {args.clusters} clusters, {args.model}")
        print(f"  from-empty converge: {first[0]:.1f} s, {first[2]} changed tasks, admin writes {first[1]} "
              f"(total {sum(first[1].values())})")
        print(f"  no-op re-run:        {again[0]:.1f} s, {again[2]} changed tasks, admin writes {again[1]} "
              f"(total {sum(again[1].values())})")


if __name__ == "__main__":
    main()
