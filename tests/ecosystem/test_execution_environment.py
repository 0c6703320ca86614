"""The example execution environment (execution-environment.yml, ansible-builder v3) and the collection's own EE
metadata (meta/execution-environment.yml, requirements.txt, bindep.txt), checked with ansible-builder: the build
context it creates, and what it finds in the installed collection (`ansible-builder introspect --sanitize`).
No container runtime and no network: nothing is built or downloaded."""
import re
import shutil
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from ecosystem_helpers import REPO, run, venv_collections

# System packages the EE files may name: each verified to be an RPM in the UBI 9 BaseOS/AppStream repositories.
# Adding a package to a bindep file means checking it there first (the certification checklist asks for it).
UBI9_PACKAGES = {"tar", "gzip", "python3.11", "python3.11-pip"}
COLLECTION_PYTHON = {"kubernetes", "pyyaml", "jmespath", "cryptography", "drawsvg"}
# ansible-builder always drops these from collection requirements: ansible-core already requires them.
BUILDER_IMPLIED = {"pyyaml"}


def requirement_names(lines):
    names = set()
    for line in lines:
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        if line:
            names.add(Requirement(line).name.lower())
    return names


def bindep_entries(path):
    return [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def builder():
    path = shutil.which("ansible-builder")
    assert path, "ansible-builder is not installed (pip install -r requirements-dev.txt)"
    return path


@pytest.fixture(scope="module")
def context(builder, tmp_path_factory, ansible_env):
    d = tmp_path_factory.mktemp("ee") / "context"
    run(builder, "create", "-f", str(REPO / "execution-environment.yml"), "-c", str(d), "--output-filename", "Containerfile",
        env=ansible_env)
    return d


def test_collection_metadata_names_its_requirement_files():
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    assert (REPO / "requirements.txt").is_file() and (REPO / "bindep.txt").is_file()


def test_python_requirements_follow_the_certification_rules():
    """Lower bounds only: no pins, no upper bounds, no ansible/ansible-core."""
    lines = [l for l in (REPO / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert requirement_names(lines) == COLLECTION_PYTHON
    for line in lines:
        req = Requirement(line)
        assert req.name.lower() not in ("ansible", "ansible-core"), line
        assert all(spec.operator in (">=", ">") for spec in req.specifier), f"{line}: lower bounds only"


def test_every_system_package_is_a_ubi9_rpm(context):
    for path in (REPO / "bindep.txt", context / "_build" / "bindep.txt"):
        unknown = set(bindep_entries(path)) - UBI9_PACKAGES
        assert not unknown, f"{path}: {sorted(unknown)} not known to be in the UBI 9 repositories"


def test_definition_is_v3_and_the_context_is_complete(context):
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    build = context / "_build"
    for name in ("requirements.yml", "requirements.txt", "bindep.txt", "exclude-bindep.txt", "scripts/assemble",
                 "scripts/introspect.py"):
        assert (build / name).is_file(), f"_build/{name} missing: {sorted(p.name for p in build.iterdir())}"
    # The collections: meshops.istio and kubernetes.core, from the repository's requirements.yml.
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert {c["name"] for c in galaxy["collections"]} == {"meshops.istio", "kubernetes.core"}
    assert galaxy == yaml.safe_load((REPO / "requirements.yml").read_text())
    # The Python requirements, as the collection declares them.
    assert requirement_names((build / "requirements.txt").read_text().splitlines()) == COLLECTION_PYTHON
    # kubernetes.core's openshift-clients (not in UBI repos) is excluded.
    assert "openshift-clients" in bindep_entries(build / "exclude-bindep.txt")


def test_containerfile_installs_ansible_and_checksummed_helm_and_istioctl(context):
    text = (context / "Containerfile").read_text()
    assert re.search(r'^ARG ANSIBLE_INSTALL_REFS=".*ansible-core[^ "]*.* ansible-runner', text, re.M), text[:1500]
    assert "ansible-galaxy collection install" in text and "requirements.yml" in text
    final = text[text.index("FROM base AS final"):]
    for arg in ("HELM_VERSION", "HELM_SHA256_AMD64", "HELM_SHA256_ARM64", "ISTIOCTL_VERSION"):
        m = re.search(rf"^ARG {arg}=(\S+)$", final, re.M)
        assert m, f"ARG {arg} with a default is missing from the final stage"
        if "SHA256" in arg:
            assert re.fullmatch(r"[0-9a-f]{64}", m.group(1)), f"{arg} is not a sha256: {m.group(1)}"
    assert re.search(r"^ARG ISTIOCTL_SHA256$", final, re.M), "ISTIOCTL_SHA256 must be a build argument"
    helm = next(l for l in final.splitlines() if l.startswith("RUN") and "get.helm.sh" in l)
    istioctl = next(l for l in final.splitlines() if l.startswith("RUN") and "istioctl-${ISTIOCTL_VERSION}" in l)
    for step, binary in ((helm, "helm"), (istioctl, "istioctl")):
        assert "sha256sum -c" in step, f"{binary} is not checked against its checksum"
        assert f"/usr/local/bin/{binary}" in step
    assert 'test -n "${ISTIOCTL_SHA256:-}"' in istioctl, "an empty istioctl checksum must fail the build"


def test_introspect_lists_the_collection_python_requirements(builder, installed, ansible_env):
    proc = run(builder, "introspect", "--sanitize", str(installed), env=ansible_env)
    data = yaml.safe_load(proc.stdout)
    ours = [l for l in data["python"] if l.endswith("# from collection meshops.istio")]
    found = requirement_names(ours)
    assert found == COLLECTION_PYTHON - BUILDER_IMPLIED, proc.stdout
    assert data["system"] == [], proc.stdout


def test_introspect_reads_every_declared_requirement(installed):
    """Before builder's sanitising, the installed collection declares all four, PyYAML included (which --sanitize
    drops on purpose: ansible-core requires it, so every EE has it)."""
    from ansible_builder._target_scripts.introspect import process

    data = process(data_dir=str(installed))
    assert requirement_names(data["python"]["meshops.istio"]) == COLLECTION_PYTHON
    assert "meshops.istio" not in data["system"], data["system"]


def test_introspect_with_kubernetes_core_as_the_ee_build_does(builder, installed, context, tmp_path, ansible_env):
    """With kubernetes.core beside it and the EE's own bindep/exclude files, only UBI packages remain."""
    root = tmp_path / "ansible_collections"
    for ns, name, src in (("meshops", "istio", installed / "ansible_collections" / "meshops" / "istio"),
                          ("kubernetes", "core", venv_collections() / "kubernetes" / "core")):
        (root / ns).mkdir(parents=True, exist_ok=True)
        (root / ns / name).symlink_to(src)
    build = context / "_build"
    proc = run(builder, "introspect", "--sanitize", str(tmp_path), "--user-pip", str(build / "requirements.txt"),
               "--user-bindep", str(build / "bindep.txt"), "--exclude-bindep-reqs", str(build / "exclude-bindep.txt"),
               env=ansible_env)
    data = yaml.safe_load(proc.stdout)
    assert {"kubernetes", "jmespath", "cryptography"} <= requirement_names(data["python"]), proc.stdout
    system = {line.split()[0] for line in data["system"]}
    assert system <= UBI9_PACKAGES and "openshift-clients" not in system, proc.stdout
