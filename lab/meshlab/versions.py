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

COMPONENTS = {
    "etcd": ETCD,
    "kubernetes": KUBERNETES,
    "helm": HELM,
    "kwok": KWOK,
    "istio": ISTIO_PSEUDO_VERSION,
    "gateway-api": GATEWAY_API,
}
