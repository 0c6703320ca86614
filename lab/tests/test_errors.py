"""Bad input gets a clear error and leaves nothing running."""
import shutil
import socket
import stat

import pytest

from meshlab import lab as labmod, layout, paths, procs
from conftest import SLOT

ERR_SLOT = (SLOT + 1) % layout.MAX_SLOTS


@pytest.mark.parametrize("count", [0, -1, layout.MAX_CLUSTERS + 1])
def test_cluster_count_out_of_range(tmp_path, count):
    with pytest.raises(labmod.LabError, match="--clusters must be between 1"):
        labmod.Lab(tmp_path / "h").up(count=count, slot=ERR_SLOT)
    assert not (tmp_path / "h").exists()


def test_port_in_use(tmp_path):
    port = layout.ClusterLayout(ERR_SLOT, 1).api_port
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        with pytest.raises(labmod.LabError, match=f"127.0.0.1:{port}"):
            labmod.Lab(tmp_path / "h").up(count=1, slot=ERR_SLOT)
    assert not (tmp_path / "h").exists()


def test_real_pods_without_iptables_are_refused_before_anything_starts(tmp_path, monkeypatch):
    # A PATH with every tool real pods need except iptables.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("ip", "socat", "setpriv"):
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(labmod.LabError, match="real pods need iptables.*--dataplane simulated"):
        labmod.Lab(tmp_path / "h").up(count=1, slot=ERR_SLOT, dataplane="real")
    assert not (tmp_path / "h").exists()


def test_unknown_dataplane(tmp_path):
    with pytest.raises(labmod.LabError, match="--dataplane must be one of real, simulated"):
        labmod.Lab(tmp_path / "h").up(count=1, slot=ERR_SLOT, dataplane="fake")


def test_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(labmod.LabError, match="missing binaries.*meshlab build"):
        labmod.Lab(tmp_path / "h").up(count=1, slot=ERR_SLOT)


def test_component_that_dies_stops_everything(tmp_path, monkeypatch):
    # A cache whose kube-apiserver exits at once: `up` must report it and stop the etcd it already started.
    cache = tmp_path / "cache"
    for component, names in paths.BINARIES.items():
        for name in names:
            dst = cache / "meshlab" / paths.component_dir(component).name / "bin" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if name == "kube-apiserver":
                dst.write_text("#!/bin/sh\necho 'simulated crash' >&2\nexit 3\n")
                dst.chmod(dst.stat().st_mode | stat.S_IEXEC)
            else:
                dst.symlink_to(paths.binary(name))
    kwok_crd = paths.component_dir("kwok") / "crd"
    (cache / "meshlab" / paths.component_dir("kwok").name / "crd").symlink_to(kwok_crd)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    lb = labmod.Lab(tmp_path / "h")
    with pytest.raises(labmod.LabError, match="(?s)kube-apiserver exited during start-up.*simulated crash"):
        lb.up(count=1, slot=ERR_SLOT)
    recs = lb.records()
    assert any(r["name"].endswith("/etcd") for r in recs)
    assert not any(procs.alive(r) for r in recs)
    assert not procs.port_in_use("127.0.0.1", layout.ClusterLayout(ERR_SLOT, 1).etcd_port)
