"""Where the lab keeps built binaries (cache, per component and version) and running state (home)."""
import os
from pathlib import Path

from . import versions

ISTIO_BINARIES = ["pilot-discovery", "pilot-agent", "istioctl"]
# Envoy's bootstrap template (tools/packaging/common/envoy_bootstrap.json), kept per Istio version; pilot-agent reads
# it as ./var/lib/istio/envoy/envoy_bootstrap_tmpl.json (its path in the proxyv2 image).
BOOTSTRAP = "envoy_bootstrap_tmpl.json"
# Binaries each component provides, so `env` and `up` can find them and report what is missing. Per-version Istio
# and Envoy components are not here (their istioctl would shadow master's on PATH): see istio_binary, envoy_binary.
BINARIES = {
    "etcd": ["etcd"],
    "kubernetes": ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"],
    "helm": ["helm"],
    "kwok": ["kwok"],
    "istio": ISTIO_BINARIES,
    "gateway-api": [],
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "meshlab"


def component_dir(component: str) -> Path:
    version = versions.COMPONENTS[component]
    return cache_dir() / (component if component.endswith("-" + version) else f"{component}-{version}")


def outputs(component: str) -> list:
    """Files (relative to the component's directory) a complete build of the component has."""
    if component == "istio" or component.startswith("istio-"):
        return [f"bin/{b}" for b in ISTIO_BINARIES] + ["charts/base/Chart.yaml", "samples/helloworld",
                                                        "samples/curl", BOOTSTRAP]
    if component.startswith("envoy-"):
        return ["bin/envoy"]
    return [f"bin/{b}" for b in BINARIES[component]]


def shared_dir() -> Path:
    """The shared/ directory beside the repository (Istio release archives, reference notes); MESHLAB_SHARED wins."""
    return Path(os.environ.get("MESHLAB_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")


def binary(name: str) -> Path:
    for component, names in BINARIES.items():
        if name in names:
            return component_dir(component) / "bin" / name
    raise KeyError(name)


def bin_dirs() -> list:
    return [str(component_dir(c) / "bin") for c, names in BINARIES.items() if names]


# ---- per Istio version (a version of versions.ISTIO_VERSIONS, or "master") ----------------------------------------


def istio_versions() -> list:
    """The Istio versions the lab knows, oldest first: the releases, then master."""
    return list(versions.ISTIO_VERSIONS)


def istio_component(version: str) -> str:
    version = versions.istio_version(version)
    return "istio" if version == versions.ISTIO else f"istio-{version}"


def istio_dir(version: str) -> Path:
    return component_dir(istio_component(version))


def istio_binary(name: str, version: str) -> Path:
    if name not in ISTIO_BINARIES:
        raise KeyError(f"{name} is not an Istio binary of the lab ({', '.join(ISTIO_BINARIES)})")
    return istio_dir(version) / "bin" / name


def charts_dir(version: str = None) -> Path:
    """That version's Helm charts (manifests/charts, stamped like a release); master's by default, as before."""
    return istio_dir(version or versions.ISTIO) / "charts"


def samples_dir(version: str) -> Path:
    return istio_dir(version) / "samples"


def bootstrap_template(version: str) -> Path:
    return istio_dir(version) / BOOTSTRAP


def envoy_component(version: str) -> str:
    return f"envoy-{versions.ISTIO_VERSIONS[versions.istio_version(version)]['envoy']}"


def envoy_binary(version: str) -> Path:
    """The Envoy that Istio `version` runs with (versions sharing a pin share the binary)."""
    return component_dir(envoy_component(version)) / "bin" / "envoy"


# Image variants the charts append to the tag (global.variant).
VARIANTS = ("-distroless", "-debug")


def version_for_image_tag(tag: str) -> str:
    """The lab's Istio version whose stamped image tag is `tag` (charts and binaries carry the version as tag)."""
    for t in (tag, *(tag[:-len(v)] for v in VARIANTS if tag.endswith(v))):
        if t in versions.ISTIO_VERSIONS:
            return t
    raise versions.UnknownIstioVersion(f"no Istio build in the lab for image tag {tag!r}; "
                                       f"known tags: {', '.join(versions.ISTIO_VERSIONS)}")


def gateway_api_crds_dir() -> Path:
    return component_dir("gateway-api") / "crd"


def default_home(slot: int) -> Path:
    return Path(os.environ.get("MESHLAB_HOME") or ("/tmp/meshlab" if slot == 0 else f"/tmp/meshlab-s{slot}"))
