"""Where the lab keeps built binaries (cache, per component and version) and running state (home)."""
import os
from pathlib import Path

from . import versions

# Binaries each component provides, so `env` and `up` can find them and report what is missing.
BINARIES = {
    "etcd": ["etcd"],
    "kubernetes": ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"],
    "helm": ["helm"],
    "kwok": ["kwok"],
    "istio": ["pilot-discovery", "istioctl"],
    "gateway-api": [],
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "meshlab"


def component_dir(component: str) -> Path:
    return cache_dir() / f"{component}-{versions.COMPONENTS[component]}"


def binary(name: str) -> Path:
    for component, names in BINARIES.items():
        if name in names:
            return component_dir(component) / "bin" / name
    raise KeyError(name)


def bin_dirs() -> list:
    return [str(component_dir(c) / "bin") for c, names in BINARIES.items() if names]


def charts_dir() -> Path:
    return component_dir("istio") / "charts"


def gateway_api_crds_dir() -> Path:
    return component_dir("gateway-api") / "crd"


def default_home(slot: int) -> Path:
    return Path(os.environ.get("MESHLAB_HOME") or ("/tmp/meshlab" if slot == 0 else f"/tmp/meshlab-s{slot}"))
