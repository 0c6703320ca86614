"""Build the lab's binaries from Go modules, pinned by versions.py, cached per component and version.

A component is rebuilt only when its directory lacks the `.complete` stamp, so a second build is a no-op.
"""
import json
import os
import shutil
import subprocess
import sys
import time
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
    shutil.copyfile(src / "kustomize" / "crd" / "bases" / "kwok.x-k8s.io_portforwards.yaml", crd / "portforwards.yaml")


def _build_istio(out, log):
    pv = versions.ISTIO_PSEUDO_VERSION
    d = _workdir("istio")
    idir = Path(_go_json(["mod", "download", "-json", f"istio.io/istio@{pv}"], d)["Dir"])
    # Istio's dependencies are pseudo-versions the checksum database does not know: carry istio's own go.sum.
    shutil.copyfile(idir / "go.sum", d / "go.sum")
    go_line = next(line.split()[1] for line in (idir / "go.mod").read_text().splitlines() if line.startswith("go "))
    _go(["mod", "edit", f"-require=istio.io/istio@{pv}", f"-go={go_line}"], d, log)
    v = "istio.io/istio/pkg/version"
    ldflags = (f"-s -w -X {v}.buildVersion={versions.ISTIO} -X {v}.buildTag={versions.ISTIO}"
               f" -X {v}.buildStatus=Clean -X {v}.buildHub=docker.io/istio")
    _go(["build", "-mod=mod", "-trimpath", "-tags=vtprotobuf,disable_pgv", "-ldflags", ldflags, "-o", str(out) + "/",
         "istio.io/istio/pilot/cmd/pilot-discovery", "istio.io/istio/istioctl/cmd/istioctl"], d, log)
    charts = paths.charts_dir()
    if charts.exists():
        shutil.rmtree(charts)
    shutil.copytree(idir / "manifests" / "charts", charts)


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


def is_built(component):
    stamp = paths.component_dir(component) / ".complete"
    return stamp.exists() and all((paths.component_dir(component) / "bin" / b).exists()
                                  for b in paths.BINARIES[component])


def build(components=None, out=sys.stdout):
    """Build what is missing; returns {component: seconds} (0 for cached ones)."""
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain (go) is not on PATH; meshlab builds its binaries from Go modules")
    timings = {}
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    for component in components or list(STEPS):
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
