"""The container images the lab runs for real, as programs in the pod's network namespace.

Each entry says what the image's process is (argv, run as the image's user) and which commands `kubectl exec`
finds in it (the host's programs of those names). Images not listed here stay simulated."""
import sys

HELLOWORLD = [sys.executable, "-m", "meshlab.apps.helloworld"]
# The shell tools both images have (the curl image is Alpine's busybox, helloworld's a Debian Python image).
SHELL_TOOLS = ["sh", "cat", "env", "sleep", "seq", "echo", "grep", "head", "tail", "wc", "ls", "date", "hostname"]

# image repository (no registry prefix docker.io/, no tag) -> what it runs
IMAGES = {
    # Istio's samples/helloworld: HTTP on 5000, /hello answers "Hello version: vN, instance: <pod>".
    "istio/examples-helloworld-v1": {"argv": HELLOWORLD, "env": {"SERVICE_VERSION": "v1"},
                                     "commands": ["curl", "python", "python3", *SHELL_TOOLS]},
    "istio/examples-helloworld-v2": {"argv": HELLOWORLD, "env": {"SERVICE_VERSION": "v2"},
                                     "commands": ["curl", "python", "python3", *SHELL_TOOLS]},
    # samples/curl: the pod's command is `sleep infinity`; what matters is curl under kubectl exec.
    "curlimages/curl": {"argv": None, "env": {}, "commands": ["curl", *SHELL_TOOLS]},
}
# Istio 1.30 moved its sample images to its own registry: the same images.
for _v in ("v1", "v2"):
    IMAGES[f"registry.istio.io/release/examples-helloworld-{_v}"] = IMAGES[f"istio/examples-helloworld-{_v}"]
# The istio-proxy container's own commands (its binaries come with the pod's Istio version).
PROXY_COMMANDS = ["pilot-agent", "envoy", "curl", *SHELL_TOOLS]


def repository(image):
    """docker.io/istio/examples-helloworld-v1:1.0 -> istio/examples-helloworld-v1"""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


def tag(image):
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def all_commands():
    return sorted({c for spec in IMAGES.values() for c in spec["commands"]} | set(PROXY_COMMANDS))
