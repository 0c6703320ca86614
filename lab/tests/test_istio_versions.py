"""The lab's Istio versions (1.29.6, 1.30.3, master): builds stamped like releases (charts, images, binaries), the
image tag -> version mapping, and istiods of two versions side by side on one cluster, each run by its own
pilot-discovery; an istiod Deployment whose tag has no build gets an Event and no process."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from meshlab import apps, build, lab as labmod, paths, supervisor, versions
from conftest import SLOT, Ctl, wait_for

VERSIONS = paths.istio_versions()
HELM = str(paths.binary("helm"))
MESHLAB = [sys.executable, "-m", "meshlab.cli"]


def _built(version):
    component = paths.istio_component(version)
    assert build.is_built(component) and build.is_built(paths.envoy_component(version)), \
        f"Istio {version} is not built: run `meshlab build {component}`"


def _run(*cmd, stdin=None):
    proc = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def _template(version, chart, *args):
    out = _run(HELM, "template", "x", paths.charts_dir(version) / chart, "-n", "istio-system", *args)
    return [d for d in yaml.safe_load_all(out) if d]


def _find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"no {kind} {name} in {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return found[0]


# ---- the version table and tags ---------------------------------------------------------------------------------
def test_three_versions_newest_release_is_the_default():
    assert VERSIONS == ["1.29.6", "1.30.3", versions.ISTIO]
    assert versions.ISTIO_DEFAULT == "1.30.3"
    assert {v: paths.envoy_component(v) for v in VERSIONS} == {
        "1.29.6": "envoy-1.37.0", "1.30.3": "envoy-1.38.3", versions.ISTIO: "envoy-1.40.0"}
    # master keeps its cache directory (the module's pseudo-version); releases get istio-<version>
    assert paths.istio_dir(versions.ISTIO) == paths.component_dir("istio") == paths.istio_dir("master")
    assert paths.istio_dir("1.30.3").name == "istio-1.30.3"
    assert paths.charts_dir() == paths.charts_dir(versions.ISTIO)


def test_version_for_image_tag():
    for v in VERSIONS:
        assert paths.version_for_image_tag(v) == v
    assert paths.version_for_image_tag("1.29.6-distroless") == "1.29.6"
    assert apps.tag(f"docker.io/istio/pilot:1.30.3@sha256:{'a' * 64}") == "1.30.3"
    assert apps.tag("registry.local:5000/istio/pilot") == "latest"
    for tag in ("latest", "1.30", "1.30.4", ""):
        with pytest.raises(KeyError) as e:
            paths.version_for_image_tag(tag)
        assert f"{tag!r}" in str(e.value) and all(v in str(e.value) for v in VERSIONS), str(e.value)


# ---- what a build holds -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_charts_are_stamped_like_a_release(version, tmp_path):
    _built(version)
    charts = paths.charts_dir(version)
    for chart in ("base", "istio-control/istio-discovery", "gateway", "ztunnel", "istio-cni"):
        meta = yaml.safe_load((charts / chart / "Chart.yaml").read_text())
        assert (meta["version"], meta["appVersion"]) == (version, version), chart
    values = (charts / "istio-control/istio-discovery/values.yaml").read_text()
    assert "# Default hub for Istio images." in values and '  hub: ""' in values   # comments and overrides stay

    assert _template(version, "base")
    docs = _template(version, "istio-control/istio-discovery")
    istiod = _find(docs, "Deployment", "istiod")
    assert [c["image"] for c in istiod["spec"]["template"]["spec"]["containers"]] == [f"docker.io/istio/pilot:{version}"]
    gateway = _find(_template(version, "gateway"), "Deployment", "x")
    assert gateway["spec"]["template"]["spec"]["containers"][0]["image"] == "auto"   # injected: the proxy below

    # The proxy image the injector gives a pod, by that version's istioctl from the rendered injector ConfigMaps.
    injector = _find(docs, "ConfigMap", "istio-sidecar-injector")["data"]
    (tmp_path / "inject.yaml").write_text(injector["config"])
    (tmp_path / "values.json").write_text(injector["values"])
    (tmp_path / "mesh.yaml").write_text(_find(docs, "ConfigMap", "istio")["data"]["mesh"])
    app = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": {
               "metadata": {"labels": {"app": "app"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}
    # --revision: without one istioctl asks a cluster for the default revision.
    out = _run(paths.istio_binary("istioctl", version), "kube-inject", "-f", "-", "--revision", "default",
               "--injectConfigFile", tmp_path / "inject.yaml", "--valuesFile", tmp_path / "values.json",
               "--meshConfigFile", tmp_path / "mesh.yaml", stdin=yaml.safe_dump(app))
    pod = next(d for d in yaml.safe_load_all(out) if d)["spec"]["template"]["spec"]
    images = {c["name"]: c["image"] for c in pod.get("initContainers", []) + pod["containers"]}
    assert images["istio-proxy"] == f"docker.io/istio/proxyv2:{version}", images


@pytest.mark.parametrize("version", VERSIONS)
def test_binaries_report_their_version(version):
    _built(version)
    said = json.loads(_run(paths.istio_binary("istioctl", version), "version", "--remote=false", "-o", "json"))
    assert said["clientVersion"]["version"] == version
    for name in ("pilot-discovery", "pilot-agent"):
        assert _run(paths.istio_binary(name, version), "version", "-s").split() == ["client", "version:", version], name
    pin = versions.ISTIO_VERSIONS[version]["envoy"]
    assert f"/{pin}/" in _run(paths.envoy_binary(version), "--version")
    assert (paths.samples_dir(version) / "helloworld" / "helloworld.yaml").exists()
    assert (paths.samples_dir(version) / "curl" / "curl.yaml").exists()
    assert "{{" in paths.bootstrap_template(version).read_text()   # a template pilot-agent renders


def test_env_gives_one_version():
    out = _run(*MESHLAB, "env", "--istio", "1.29.6")
    exports = dict(line[len("export "):].split("=", 1) for line in out.splitlines())
    assert exports["MESHLAB_ISTIO_VERSION"] == "1.29.6"
    assert exports["MESHLAB_ISTIO_CHARTS"] == str(paths.charts_dir("1.29.6"))
    assert exports["MESHLAB_ISTIO_SAMPLES"] == str(paths.samples_dir("1.29.6"))
    assert exports["PATH"].split(":")[0] == str(paths.istio_dir("1.29.6") / "bin")
    assert "MESHLAB_ISTIO_VERSION=1.30.3" in _run(*MESHLAB, "env")
    assert f"MESHLAB_ISTIO_VERSION={versions.ISTIO}" in _run(*MESHLAB, "env", "--istio", "master")
    bad = subprocess.run([*MESHLAB, "env", "--istio", "1.2.3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "1.29.6, 1.30.3" in bad.stderr


# ---- two versions side by side in a lab ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab1(tmp_path_factory):
    for v in ("1.29.6", "1.30.3"):
        _built(v)
    lb = labmod.Lab(tmp_path_factory.mktemp("meshlab"))
    lb.up(count=1, slot=SLOT, dataplane="simulated")   # only istiods here: no pod runs for real
    try:
        yield Ctl(lb)
    finally:
        if lb.state() is not None:
            lb.down(keep=True)


def _get(rec, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rec['ports']['monitoring']}{path}", timeout=5) as r:
            return r.read().decode()
    except OSError:  # until istiod listens
        return None


def test_two_revisions_of_two_versions_run_side_by_side(lab1):
    ctx = lab1.contexts[0]
    lab1.helm(ctx, "install", "istio-base", str(paths.charts_dir("1.30.3") / "base"), "-n", "istio-system",
              "--create-namespace", "--set", "defaultRevision=r1-30")
    for version, rev in (("1.29.6", "r1-29"), ("1.30.3", "r1-30")):
        lab1.helm(ctx, "install", f"istiod-{rev}", str(paths.charts_dir(version) / "istio-control" / "istio-discovery"),
                  "-n", "istio-system", "--set", f"revision={rev}", "--wait", "--timeout", "90s")
    recs = {}
    for version, rev in (("1.29.6", "r1-29"), ("1.30.3", "r1-30")):
        rec = lab1.istiod(ctx, f"istio-system/istiod-{rev}")
        assert rec["version"] == version and rec["revision"] == rev
        assert json.loads((Path(rec["dir"]) / "process.json").read_text())["version"] == version
        assert os.readlink(f"/proc/{rec['pid']}/exe") == str(paths.istio_binary("pilot-discovery", version))
        metrics = wait_for(f"{rev} metrics", lambda: _get(rec, "/metrics"), timeout=60)
        assert f'istio_build{{component="pilot",tag="{version}"}} 1' in metrics
        assert wait_for(f"{rev} /version", lambda: _get(rec, "/version")).startswith(version)
        recs[rev] = rec
    assert len({r["pid"] for r in recs.values()}) == 2
    status = json.loads(lab1.run(*MESHLAB, "--home", str(lab1.lab.home), "status", "--json").stdout)
    alive = {p["name"]: p for p in status["processes"] if p["alive"]}
    assert {alive[r["name"]]["version"] for r in recs.values()} == {"1.29.6", "1.30.3"}


def test_each_revision_injects_its_own_proxy(lab1):
    ctx = lab1.contexts[0]
    for version, rev in (("1.29.6", "r1-29"), ("1.30.3", "r1-30")):
        ns = f"app-{rev}"
        lab1.kubectl(ctx, "create", "namespace", ns)
        lab1.kubectl(ctx, "label", "namespace", ns, f"istio.io/rev={rev}")
        # The webhook fails closed until that istiod serves it.
        wait_for(f"{rev} injects", lambda: lab1.kubectl(ctx, "-n", ns, "run", "app", "--image=registry.invalid/app:1",
                                                        check=False).returncode == 0, timeout=60)
        pod = lab1.kjson(ctx, "-n", ns, "get", "pod", "app")["spec"]
        images = {c["name"]: c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
        assert images["istio-proxy"] == f"docker.io/istio/proxyv2:{version}", images


NOBUILD = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "istiod-nobuild", "namespace": "istio-system",
                        "labels": {"app": "istiod", "istio.io/rev": "nobuild"}},
           "spec": {"selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "nobuild"}},
                    "template": {"metadata": {"labels": {"app": "istiod", "istio.io/rev": "nobuild"}},
                                 "spec": {"containers": [{"name": "discovery",
                                                          "image": f"docker.io/istio/pilot:1.99.0@sha256:{'0' * 64}"}]}}}}


def test_a_tag_without_build_gets_an_event_and_no_istiod(lab1):
    ctx = lab1.contexts[0]
    lab1.kubectl(ctx, "apply", "-f", "-", stdin=json.dumps(NOBUILD))

    def events():
        return lab1.kjson(ctx, "get", "events", "-n", "istio-system", "--field-selector",
                          "involvedObject.name=istiod-nobuild,reason=MeshlabNoIstioBuild")["items"]
    found = wait_for("the MeshlabNoIstioBuild Event", events, timeout=30)
    assert found[0]["type"] == "Warning" and found[0]["involvedObject"]["kind"] == "Deployment"
    assert "'1.99.0'" in found[0]["message"] and all(v in found[0]["message"] for v in VERSIONS)
    time.sleep(3 * supervisor.TICK + 1)   # more supervisor ticks: still one Event
    assert len(events()) == 1
    assert not [r for r in lab1.lab.records() if r.get("deployment") == "istio-system/istiod-nobuild"]
    not_started = lab1.lab.status()["istiods_not_started"]
    assert [r["deployment"] for r in not_started] == ["istio-system/istiod-nobuild"]
    assert not_started[0]["reason"] == "MeshlabNoIstioBuild"
    out = lab1.run(*MESHLAB, "--home", str(lab1.lab.home), "status").stdout
    assert "NOT STARTED" in out and "1.99.0" in out
    # the other two keep running
    assert {r.get("version") for r in lab1.lab.records() if "/istiod/" in r["name"] and
            labmod.procs.alive(r)} == {"1.29.6", "1.30.3"}
    lab1.kubectl(ctx, "delete", "deployment", "-n", "istio-system", "istiod-nobuild")
    wait_for("the record gone", lambda: not lab1.lab.status()["istiods_not_started"], timeout=15)
