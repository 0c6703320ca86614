"""`meshlab stop-apiserver` / `start-apiserver`: one cluster's kube-apiserver goes down by its pid while everything
else keeps running, and comes back with the same port, certificates and etcd data. Tests run in file order."""
import json
import urllib.request

import pytest

from meshlab import lab as labmod, procs
from conftest import wait_for


def _apiserver(lab, ctx):
    return next(r for r in lab.lab.state()["procs"] if r["name"] == f"{ctx}/kube-apiserver")


def _meshlab(lab, *args, check=True):
    return lab.run("meshlab", "--home", str(lab.lab.home), *args, check=check)


def test_stop_apiserver_stops_only_that_process(lab):
    c1, c2 = lab.contexts
    lab.kubectl(c2, "create", "configmap", "kept", "--from-literal=k=v")
    before = {r["name"]: r for r in lab.lab.records()}
    rec = before[f"{c2}/kube-apiserver"]
    port = lab.lab.clusters()[1].api_port
    out = _meshlab(lab, "stop-apiserver", "--cluster", "2", "--kill").stdout
    assert f"pid {rec['pid']}" in out and "SIGKILL" in out
    assert not procs.alive(rec)
    assert not procs.port_in_use("127.0.0.1", port), "the killed API server's port must be free"
    # Everything else still runs: the other cluster answers, this cluster's etcd and the supervisor are alive.
    others = [r for name, r in before.items() if name != rec["name"]]
    assert others and all(procs.alive(r) for r in others), [r["name"] for r in others if not procs.alive(r)]
    assert lab.kubectl(c1, "get", "ns", "default", "-o", "name").stdout.strip() == "namespace/default"
    down = lab.kubectl(c2, "get", "ns", "default", "--request-timeout=5s", check=False)
    assert down.returncode != 0 and "was refused" in down.stderr, down.stderr
    st = json.loads(_meshlab(lab, "status", "--json").stdout)
    dead = [p["name"] for p in st["processes"] if not p["alive"]]
    assert dead == [rec["name"]]
    assert _meshlab(lab, "status", check=False).returncode == 1, "status fails while a process is down"


def test_stop_twice_and_bad_cluster_are_clear_errors(lab):
    c2 = lab.contexts[1]
    again = _meshlab(lab, "stop-apiserver", "--cluster", "2", check=False)
    assert again.returncode == 2 and f"{c2}: kube-apiserver" in again.stderr and "not running" in again.stderr
    bad = _meshlab(lab, "stop-apiserver", "--cluster", "3", check=False)
    assert bad.returncode == 2 and "--cluster must be between 1 and 2, got 3" in bad.stderr
    with pytest.raises(labmod.LabError, match="between 1 and 2"):
        lab.lab.start_apiserver(0)


def test_start_apiserver_brings_the_same_cluster_back(lab):
    c2 = lab.contexts[1]
    old = _apiserver(lab, c2)
    out = _meshlab(lab, "start-apiserver", "--cluster", "2").stdout
    new = _apiserver(lab, c2)
    assert new["pid"] != old["pid"] and procs.alive(new) and f"pid {new['pid']}" in out
    assert new["argv"] == old["argv"], "the same command line: port, certificates, etcd, audit log"
    # The unchanged kubeconfig (same CA, same client certificate, same port) reaches it, and etcd kept the data.
    cm = lab.kjson(c2, "get", "configmap", "kept")
    assert cm["data"] == {"k": "v"}
    # It answers /readyz right away (start-apiserver waits for that).
    c = lab.lab.clusters()[1]
    import ssl
    ctx = ssl.create_default_context(cafile=str(lab.lab.home / c.name / "ca.crt"))
    with urllib.request.urlopen(f"{c.server}/readyz", context=ctx, timeout=5) as resp:
        assert resp.status == 200
    assert all(p["alive"] for p in lab.lab.status()["processes"])
    again = _meshlab(lab, "start-apiserver", "--cluster", "2", check=False)
    assert again.returncode == 2 and "already running" in again.stderr
    # The restarted server writes to the same audit log: an admin write after the restart is counted.
    mark = _meshlab(lab, "mark").stdout.strip()
    lab.kubectl(c2, "create", "configmap", "after-restart")
    counts = wait_for("write counted", lambda: (lambda n: n if n[c2] == 1 else None)(
        json.loads(_meshlab(lab, "writes", "--since", mark, "--json").stdout)), timeout=10)
    assert counts[lab.contexts[0]] == 0


def test_down_stops_the_restarted_apiserver(lab):
    rec = _apiserver(lab, lab.contexts[1])
    recs = lab.lab.records()
    lab.lab.down(keep=True)
    assert not procs.alive(rec)
    assert not any(procs.alive(r) for r in recs)
    lab.lab.state_file.unlink()
