"""Integration tests run the collection's playbooks against a real meshlab (real API servers, real istiod)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# Under pytest-xdist each worker runs its own labs in its own slot (address and port range).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    os.environ["MESHLAB_SLOT"] = str(int(os.environ.get("MESHLAB_SLOT", "1")) + 1 + int(_WORKER.lstrip("gw")))


def run(*cmd, env=None, check=True, timeout=900, cwd=REPO):
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return proc


class NotReached(AssertionError):
    """What wait_until raises when its time is up; .last is the last value observed."""

    def __init__(self, message, last):
        super().__init__(message)
        self.last = last


def wait_until(observe, timeout, what, done=bool, interval=1.0):
    """Observe state that is written on its own time (by istiod, a controller, the API server's caches) until
    done(value) holds, by default until the value is true, and return that value. After timeout seconds raise
    NotReached, an AssertionError naming what was awaited and the last value observed (let observe return what is
    still missing). interval only paces the polls: the wait ends on the condition, never on a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise NotReached(f"{what}: not so after {timeout}s; last observed: {value!r}", value)
        time.sleep(interval)


def changed_tasks(stdout):
    """Sorted (host, task) pairs the default callback printed as changed."""
    out, task = [], None
    for line in stdout.splitlines():
        m = re.match(r"TASK \[(.*)\] \**$", line)
        if m:
            task = m.group(1)
        m = re.match(r"changed: \[([^\]]+)\]", line)
        if m:
            out.append((m.group(1), task))
    return sorted(out)


def flow_steps(lab, inventory, out):
    """A function that runs a playbook as a named step of a flow and keeps in out[step] its process, the admin
    writes per cluster, its changed tasks and its seconds; a failed step stops the flow unless expect_ok=False."""
    def playbook(step, name, *extra, expect_ok=True):
        mark = lab.mark()
        started = time.monotonic()
        proc = lab.playbook(name, inventory, *extra)
        out[step] = dict(proc=proc, writes=lab.writes(mark), changed=changed_tasks(proc.stdout),
                         seconds=round(time.monotonic() - started, 1))
        if expect_ok:
            assert proc.returncode == 0, "%s failed:\n%s\n%s" % (step, proc.stdout[-8000:], proc.stderr[-2000:])
    return playbook


def step_seconds(out):
    """'step Ns, ...' of the steps flow_steps ran, in order."""
    return ", ".join("%s %ss" % (k, v["seconds"]) for k, v in out.items() if isinstance(v, dict) and "seconds" in v)


class Lab:
    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, MESHLAB_HOME=str(home), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        for line in run("meshlab", "env", "--istio", "master", env=self.env).stdout.splitlines():
            key, dummy, value = line[len("export "):].partition("=")
            self.env[key] = value.replace("$PATH", os.environ["PATH"])

    def meshlab(self, *args):
        return run("meshlab", *args, env=self.env).stdout

    def inventory(self, model, path, ca_dir):
        self.meshlab("inventory", "--model", model, "--ca-dir", str(ca_dir), "-o", str(path))
        return yaml.safe_load(path.read_text())

    def contexts(self):
        return [c["context"] for c in json.loads(self.meshlab("status", "--json"))["clusters"]]

    def mark(self):
        return self.meshlab("mark").strip()

    def writes(self, since):
        """Admin write requests per cluster since the mark, from the API servers' audit logs. Exact as soon as the
        requests have been answered, no wait: the lab runs kube-apiserver with the log backend in its default mode,
        blocking (--audit-log-mode unset), so each event is written to audit.log (unbuffered) before the response is
        complete. With --audit-log-mode=batch this would have to wait for a marker request to show up in the log."""
        return json.loads(self.meshlab("writes", "--since", since, "--json"))

    def playbook(self, playbook, inventory, *extra, check=False):
        return run("ansible-playbook", "-i", str(inventory), str(REPO / "playbooks" / playbook), *extra, env=self.env,
                   check=check)


def _lab(tmp_path_factory, clusters, dataplane="simulated"):
    home = tmp_path_factory.mktemp("lab")
    env = dict(os.environ, MESHLAB_HOME=str(home))
    run("meshlab", "up", "--clusters", str(clusters), "--dataplane", dataplane, env=env)
    try:
        yield Lab(home)
    finally:
        run("meshlab", "down", "--keep", env=env, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A fresh two-cluster lab per test module, its pods simulated: for what the control plane shows."""
    yield from _lab(tmp_path_factory, 2)


@pytest.fixture(scope="module")
def real_lab(tmp_path_factory):
    """A fresh two-cluster lab whose sidecars, gateways and sample apps run for real (Envoy, pilot-agent)."""
    yield from _lab(tmp_path_factory, 2, "real")


@pytest.fixture(scope="module")
def lab3(tmp_path_factory):
    """A fresh three-cluster lab per test module."""
    yield from _lab(tmp_path_factory, 3)
