"""A real lab for the tests: clusters, kwok nodes and istiods as real processes, in their own slot."""
import json
import os
import subprocess
import time

import pytest

from meshlab import lab as labmod, paths

SLOT = int(os.environ.get("MESHLAB_SLOT", "1"))


class Ctl:
    """Shell helpers bound to one running lab."""

    def __init__(self, lab):
        self.lab = lab
        self.env = dict(os.environ, KUBECONFIG=str(lab.kubeconfig()),
                        PATH=":".join(paths.bin_dirs()) + ":" + os.environ["PATH"])
        self.contexts = [c.context for c in lab.clusters()]

    def run(self, *cmd, check=True, stdin=None, timeout=120):
        proc = subprocess.run(list(cmd), env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def kubectl(self, ctx, *args, **kw):
        return self.run("kubectl", "--context", ctx, *args, **kw)

    def kjson(self, ctx, *args):
        return json.loads(self.kubectl(ctx, *args, "-o", "json").stdout)

    def helm(self, ctx, *args, **kw):
        return self.run("helm", "--kube-context", ctx, *args, **kw)

    def istiod(self, ctx, deployment="istio-system/istiod"):
        """The supervisor's record of the istiod running for a Deployment (waits for it)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for rec in self.lab.records():
                if rec.get("deployment") == deployment and rec["name"].startswith(ctx + "/"):
                    return rec
            time.sleep(0.3)
        raise AssertionError(f"no istiod started for {deployment} in {ctx}")


def wait_for(what, fn, timeout=60, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("meshlab")
    lb = labmod.Lab(home)
    lb.up(count=2, slot=SLOT)
    try:
        yield Ctl(lb)
    finally:
        if lb.state() is not None:
            lb.down(keep=True)  # keep the logs in the tmp dir for a post-mortem
