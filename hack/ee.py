"""The execution environment image, built here from the repository's execution-environment.yml (ansible-builder 3,
podman), for the tests and benchmark that run the playbooks inside it.

    python hack/ee.py image          # build what is missing (cached by content); print the image name
    python hack/ee.py definition     # print the lab variant of execution-environment.yml

No image registry is reachable from these machines, so the lab variant differs from the production definition in
exactly what needs a registry or a download, and nothing else (lab_variant below):
- the base image: Debian bookworm made locally with mmdebstrap from Debian's packages and imported into podman,
  instead of UBI 9 from registry.access.redhat.com (so Debian's python3 and apt-get instead of python3.11 and dnf);
- the collections: this checkout's built tarball and kubernetes.core from the installed `ansible` package, instead
  of Galaxy;
- helm and istioctl: the lab's builds of the same versions copied in, instead of the release downloads.
pip inside the build reaches PyPI only with this machine's TLS trust: the base image carries $SSL_CERT_FILE and a
pip.conf naming it, as a company's base image carries its CA. Images are tagged by a hash of everything that goes into them, so an unchanged input is a no-op
and a changed one builds anew; older tags of the same image are removed after a build.
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "meshops-ee"
os.environ["CONTAINERS_CONF"] = str(REPO / "hack" / "containers.conf")

BASE_REPO = "localhost/meshops-ee-base"
EE_REPO = "localhost/meshops-istio-ee"
# The base image: the packages ansible-builder's stages need (python3 with pip; apt-get is the package manager).
BASE_SUITE = "bookworm"
BASE_PACKAGES = ["python3", "python3-pip", "python3-venv"]
HOST_CA = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
# The lab's istioctl in the image: the newest release the lab builds (execution-environment.yml pins the same).
ISTIO_RELEASE = "1.30.3"


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, text=True, capture_output=kw.pop("quiet", True), **kw).stdout


def podman(*args, **kw):
    return sh("podman", *args, **kw)


def image_exists(name):
    return subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0


def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def prune(repo, keep):
    """Remove this project's older images of repo (other tags), so the cache holds one of each."""
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={repo}")
    for ref in sorted(set(out.split())):
        if ref != keep:
            subprocess.run(["podman", "rmi", "-f", ref], check=False, capture_output=True)


def base_image():
    """localhost/meshops-ee-base:<hash of the recipe>, made with mmdebstrap from Debian's packages when missing."""
    trust = Path(HOST_CA).read_bytes()
    tag = f"{BASE_REPO}:{digest(BASE_SUITE, trust, *BASE_PACKAGES)}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="meshops-ee-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        # --variant=apt: essential packages, apt and what is listed; the host's apt sources (Debian's mirror).
        sh("mmdebstrap", "--quiet", "--variant=apt", "--include=" + ",".join(BASE_PACKAGES),
           f"--customize-hook=copy-in {HOST_CA} /etc/ssl",
           f"--customize-hook=printf '[global]\\ncert = /etc/ssl/{Path(HOST_CA).name}\\n' > \"$1/etc/pip.conf\"",
           BASE_SUITE, str(tar))
        podman("import", "--change", "CMD=/bin/bash", str(tar), tag)
    prune(BASE_REPO, tag)
    return tag


def collection_tarball(out):
    """This checkout's collection, built as `make build-collection` builds it (galaxy.yml build_ignore applies)."""
    sh("ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), str(REPO))
    return next(out.glob("meshops-istio-*.tar.gz"))


def installed_collection_dir(namespace, name):
    import ansible_collections  # the `ansible` package's collections (requirements-dev.txt)
    return Path(ansible_collections.__path__[0]) / namespace / name


def installed_collection_version(namespace, name):
    manifest = json.loads((installed_collection_dir(namespace, name) / "MANIFEST.json").read_text())
    return manifest["collection_info"]["version"]


def installed_collection_tarball(namespace, name, out):
    """An installed collection packed back into a Galaxy artifact (MANIFEST.json and FILES.json at its root, then the
    files FILES.json lists, which ansible-galaxy checks by checksum on install). The `ansible` package leaves some of
    its collections' files out (.github/ and the like): FILES.json, and MANIFEST.json's checksum of it, are rewritten
    to list what is there."""
    src = installed_collection_dir(namespace, name)
    manifest = json.loads((src / "MANIFEST.json").read_text())
    listing = json.loads((src / "FILES.json").read_text())
    listing["files"] = [e for e in listing["files"] if e["name"] == "." or (src / e["name"]).exists()]
    files_json = json.dumps(listing, indent=1).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    path = out / f"{namespace}-{name}-{manifest['collection_info']['version']}.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for member, data in (("MANIFEST.json", json.dumps(manifest, indent=1).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
        for e in listing["files"][1:]:   # "." first
            t.add(src / e["name"], arcname=e["name"], recursive=False)
    return path


def lab_binaries():
    """helm and istioctl as the lab builds them (cached by version by `meshlab build`)."""
    from meshlab import paths
    return {"helm": paths.binary("helm"), "istioctl": paths.istio_binary("istioctl", ISTIO_RELEASE)}


def production():
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


def lab_variant(base, files):
    """execution-environment.yml with base image, collections and binaries from this machine."""
    d = production()
    d["images"]["base_image"]["name"] = base
    # Debian's python3 (3.11) is in the base image; apt-get is the package manager ansible-builder's scripts call.
    d["dependencies"]["python_interpreter"] = dict(package_system="python3", python_path="/usr/bin/python3")
    # pip comes from Debian's python3-pip: ensurepip, what builder runs otherwise, is disabled in Debian's python.
    d.setdefault("options", {}).update(package_manager_path="/usr/bin/apt-get", skip_pip_install=True)
    d["dependencies"]["galaxy"] = dict(collections=[dict(name=f"/build/local/{p.name}", type="file")
                                                    for p in (files["collection"], files["kubernetes.core"])])
    d["dependencies"]["python"] = str(REPO / d["dependencies"]["python"])   # the definition is written elsewhere
    d["additional_build_files"] = [dict(src=str(p), dest="local") for p in files.values()]
    steps = d["additional_build_steps"]
    # helm and istioctl: copied from the build context instead of downloaded (the production steps that curl them).
    steps["append_final"] = [
        "COPY _build/local/helm _build/local/istioctl /usr/local/bin/",
        "RUN helm version --short && istioctl version --remote=false",
    ] + [s for s in steps["append_final"] if not s.startswith("RUN")]
    steps["prepend_final"] = [s for s in steps["prepend_final"] if "SHA256" not in s]
    return d


def image(verbose=False):
    """Build the EE image when its inputs changed; return (name, seconds spent building, 0 when cached)."""
    t0 = time.monotonic()
    base = base_image()
    work = CACHE / "context"
    shutil.rmtree(work, ignore_errors=True)
    inputs = work / "inputs"
    inputs.mkdir(parents=True)
    files = {"collection": collection_tarball(inputs),
             "kubernetes.core": installed_collection_tarball("kubernetes", "core", inputs)}
    for name, src in lab_binaries().items():
        files[name] = inputs / name
        shutil.copy2(src, files[name])
    definition = lab_variant(base, files)
    # The tag: the definition and the contents of every input (a tarball's FILES.json lists its files' checksums).
    sums = []
    for p in sorted(files.values()):
        if p.name.endswith(".tar.gz"):
            with tarfile.open(p) as t:
                sums.append(t.extractfile("FILES.json").read())
        else:
            sums.append(hashlib.sha256(p.read_bytes()).hexdigest())
    tag = f"{EE_REPO}:lab-{digest(yaml.safe_dump(definition), *sums)}"
    if image_exists(tag):
        return tag, 0.0
    ee = work / "execution-environment.yml"
    ee.write_text(yaml.safe_dump(definition, sort_keys=False))
    cmd = ["ansible-builder", "build", "-f", str(ee), "-c", str(work / "build"), "-t", tag,
           "--container-runtime", "podman", "--prune-images", "-v", "3" if verbose else "1",
           "--extra-build-cli-args", "--network host"]
    proc = subprocess.run(cmd, cwd=work, text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"ansible-builder build failed ({proc.returncode}):\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}")
    prune(EE_REPO, tag)
    return tag, time.monotonic() - t0


def ensure_mqueue():
    """ansible-navigator refuses podman without /dev/mqueue (ansible-runner runs containers with --ipc=host, which
    shares it); this machine's /dev has none. An empty directory is all that is needed; nothing is mounted."""
    Path("/dev/mqueue").mkdir(exist_ok=True)


def main(argv):
    if argv[1:] == ["definition"]:
        names = ("collection", "kubernetes.core", "helm", "istioctl")
        print(yaml.safe_dump(lab_variant(f"{BASE_REPO}:<hash>", {k: Path(k) for k in names}), sort_keys=False))
    elif argv[1:2] == ["image"]:
        name, seconds = image(verbose="-v" in argv)
        print(name)
        print(f"built in {seconds:.0f}s" if seconds else "cached", file=sys.stderr)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
