"""The execution environment for real: the image built by ansible-builder from execution-environment.yml (its lab
variant, hack/ee.py: base image, collections and helm/istioctl from this machine instead of registries and
downloads) runs the playbooks with ansible-navigator as AWX runs the job templates of awx/controller_config.yml:
the project's playbooks, the inventory without kubeconfig paths, the credential type's kubeconfig file and
environment, the surveys' extra vars, the job template's forks. On a real lab (real Envoy), Istio 1.30.3, two
networks: converge, a re-run with 0 writes, verify with traffic, and the report. Everything the playbooks use
(ansible-core, the collections, kubernetes, helm, istioctl) comes from the image; the host gives only podman."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from ansible_builder._target_scripts.introspect import EXCLUDE_REQUIREMENTS
from meshlab import paths
from packaging.requirements import Requirement

import traffic
from conftest import REPO, run

sys.path.insert(0, str(REPO / "hack"))
import ee  # noqa: E402  (hack/ee.py: the image build)

RELEASE = "1.30.3"
# Where the AWX job's container finds its inputs: the credential's kubeconfig file, the CA directory the inventory
# names (awx/controller_config.yml meshops_awx_ca_dir) and the chart directory the survey answer names.
KUBECONFIG_IN_EE = "/runner/credentials/kubeconfig"
# Runner's event markers (escape sequences around base64) that navigator's stdout mode interleaves with the output.
MARKERS = re.compile(r"\x1b\[K[A-Za-z0-9+/=]*\x1b\[\d+D|\x1b\[K")


def awx_config():
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((REPO / "awx" / "controller_config.yml").read_text(), Loader=Loader)  # noqa: S506 (SafeLoader)


AWX = awx_config()


def job_template(name):
    return next(t for t in AWX["meshops_awx_job_templates"] if t["name"] == f"meshops.istio {name}")


def survey_vars(template, answers):
    """The extra vars AWX sends for a launch: each answered question, else its default when it has one."""
    out = {}
    for q in template["survey_spec"]["spec"]:
        if q["variable"] in answers:
            out[q["variable"]] = answers[q["variable"]]
        elif q.get("default") is not None:
            out[q["variable"]] = q["default"]
    return out


def credential_env(path):
    """The environment the "Kubeconfig and contexts" credential type injects, its file at path, no default context."""
    kind = next(t for t in AWX["meshops_awx_credential_types"] if t["name"] == "Kubeconfig and contexts")
    values = {"{{ tower.filename.kubeconfig }}": path, "{{ context }}": ""}
    return {k: values[v] for k, v in kind["injectors"]["env"].items()}


class Job:
    """ansible-navigator runs of one project (the playbooks and ansible.cfg as AWX checks them out) and inventory."""

    def __init__(self, lab, image, tmp):
        self.lab, self.image = lab, image
        self.project = tmp / "project"
        shutil.copytree(REPO / "playbooks", self.project / "playbooks")
        shutil.copy(REPO / "ansible.cfg", self.project)
        self.ca = tmp / "ca"
        self.ca.mkdir()
        self.charts = str(paths.charts_dir(RELEASE))
        # The lab's inventory as an AWX inventory source has it: no kubeconfig, helm or istioctl paths (the
        # credential and the image provide them) and the awx/ inventory variables on top.
        inv = lab.inventory("multi-primary-multi-network", tmp / "lab-inventory.yml", self.ca)
        mesh = inv["all"]["vars"]
        for key in ("kubeconfig", "istio_helm_binary", "istio_istioctl_binary", "istio_charts", "istio_ca_dir"):
            mesh.pop(key)
        awx_vars = AWX["meshops_awx_inventories"][0]["variables"]
        mesh.update(awx_vars, istio_ca_dir=AWX["meshops_awx_ca_dir"])
        self.inventory = self.project / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))

    def navigator(self, *args):
        env = dict(os.environ)   # CONTAINERS_CONF: set by importing hack/ee.py
        env.pop("ANSIBLE_CONFIG", None)
        # Playbook artifacts (a JSON file per run in the project) are a `run` setting; `exec` takes none.
        artifacts = ["--pae", "false"] if args[0] == "run" else []
        cmd = ["ansible-navigator", args[0], "--ee", "true", "--eei", self.image, "--pull-policy", "never",
               "--ce", "podman", "--mode", "stdout", "--lf", str(self.project.parent / "navigator.log"), *artifacts,
               *args[1:]]
        proc = subprocess.run(cmd, cwd=self.project, env=env, capture_output=True, text=True, timeout=1200, check=False)
        proc.stdout = MARKERS.sub("", proc.stdout)
        return proc

    def launch(self, name, answers=None):
        """Run job template `name` as AWX launches it; (process, admin writes per cluster)."""
        t = job_template(name)
        extra = survey_vars(t, dict({"istio_charts": self.charts}, **(answers or {})))
        args = [t["playbook"], "-i", str(self.inventory), "--forks", str(t["forks"]),
                "--eev", f"{self.lab.home / 'kubeconfig'}:{KUBECONFIG_IN_EE}:ro",
                "--eev", f"{self.ca}:{AWX['meshops_awx_ca_dir']}",
                "--eev", f"{self.charts}:{self.charts}:ro"]
        for k, v in credential_env(KUBECONFIG_IN_EE).items():
            args += ["--senv", f"{k}={v}"]
        for k, v in extra.items():
            args += ["-e", f"{k}={v}"]
        if t["job_type"] == "check":
            args.append("--check")
        if t.get("diff_mode"):
            args.append("--diff")
        mark = self.lab.mark()
        started = time.monotonic()
        proc = self.navigator("run", *args)
        print(f"\n{t['name']} from the EE: {time.monotonic() - started:.1f}s, rc {proc.returncode}")
        return proc, self.lab.writes(mark)


def recap(stdout):
    return {m.group(1): dict(changed=int(m.group(2)), failed=int(m.group(3)))
            for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", stdout, re.M)}


@pytest.fixture(scope="module")
def image():
    name, seconds = ee.image()
    ee.ensure_mqueue()
    print(f"\nEE image {name}: {'built in %.0fs' % seconds if seconds else 'cached'}")
    return name


@pytest.fixture(scope="module")
def job(real_lab, image, tmp_path_factory):
    return Job(real_lab, image, tmp_path_factory.mktemp("ee"))


@pytest.fixture(scope="module")
def converged(job):
    proc, writes = job.launch("multi-primary")
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    return proc, writes


def test_image_holds_what_the_collection_declares(job):
    """ansible-navigator exec: ansible-core, the collections, their Python packages, helm and istioctl inside."""
    script = ("ansible --version | head -1; ansible-galaxy collection list --format json 2>/dev/null; "
              "python3 -c 'import importlib.metadata as m; print(m.version(\"kubernetes\"))'; "
              "helm version --short; istioctl version --remote=false")
    proc = job.navigator("exec", "--", script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    print("\n" + proc.stdout)
    core = re.search(r"ansible \[core ([\d.]+)\]", lines[0]).group(1)
    definition = ee.production()["dependencies"]
    assert Requirement(definition["ansible_core"]["package_pip"]).specifier.contains(core), lines[0]
    collections = json.loads(lines[1])["/usr/share/ansible/collections/ansible_collections"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert collections["meshops.istio"]["version"] == galaxy["version"]
    assert collections["kubernetes.core"]["version"] == ee.installed_collection_version("kubernetes", "core")
    kubernetes = next(Requirement(r) for r in (REPO / "requirements.txt").read_text().splitlines()
                      if r.startswith("kubernetes"))
    assert kubernetes.specifier.contains(lines[2]), lines[2]
    assert lines[3] == run(str(paths.binary("helm")), "version", "--short").stdout.strip(), lines[3]
    assert lines[4] == f"client version: {RELEASE}", lines[4]


def test_introspect_agrees_with_the_declared_requirements(job):
    """ansible-builder introspect of the image's collections lists requirements.txt for meshops.istio (less what
    builder leaves out as always present: PyYAML), and every Python requirement it lists is installed in the image
    at a version that satisfies it."""
    out = job.project.parent / "image-collections"
    cid = run("podman", "create", job.image).stdout.strip()
    try:
        run("podman", "cp", f"{cid}:/usr/share/ansible/collections", str(out))
    finally:
        run("podman", "rm", cid, check=False)
    found = yaml.safe_load(run("ansible-builder", "introspect", str(out)).stdout)
    ours = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    ours = sorted(r for r in ours if r and Requirement(r).name.lower() not in EXCLUDE_REQUIREMENTS)
    listed = sorted(r.split("#")[0].strip() for r in found["python"] if r.endswith("# from collection meshops.istio"))
    assert listed == ours, found["python"]
    bindep = sorted(line.strip() for line in (REPO / "bindep.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#"))
    assert sorted(r.split("#")[0].strip() for r in found["system"] if r.endswith("meshops.istio")) == bindep
    reqs = [Requirement(r.split("#")[0].strip()) for r in found["python"]]
    probe = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    proc = job.navigator("exec", "--", "python3 -c '%s' %s" % (probe, " ".join(r.name for r in reqs)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    versions = json.loads(proc.stdout.strip().splitlines()[-1])
    unmet = [str(r) for r in reqs if not r.specifier.contains(versions[r.name], prereleases=True)]
    assert not unmet, (unmet, versions)


def test_converge_from_the_ee(converged):
    proc, writes = converged
    assert sum(writes.values()) > 0, writes
    assert all(r["failed"] == 0 for r in recap(proc.stdout).values()), proc.stdout[-3000:]


def test_rerun_from_the_ee_writes_nothing(job, converged):
    proc, writes = job.launch("multi-primary")
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert sum(writes.values()) == 0, writes
    assert all(r["changed"] == 0 for r in recap(proc.stdout).values()), recap(proc.stdout)


def test_verify_from_the_ee_carries_traffic(job, converged):
    """verify's traffic check, from inside the image: every cluster answered by v1 and v2."""
    proc, writes = job.launch("verify")
    assert proc.returncode == 0, proc.stdout[-8000:]
    answers = traffic.verify_answers(proc.stdout)
    assert set(answers) == {"cluster1", "cluster2"}, proc.stdout[-4000:]
    assert all(set(v) == {"v1", "v2"} for v in answers.values()), answers


def test_report_from_the_ee(job, converged):
    """The report job writes where report.yml's default puts it, in the job's working directory (the project)."""
    proc, writes = job.launch("report")
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert sum(writes.values()) == 0, writes
    assert (job.project / "mesh-report" / "index.html").stat().st_size > 0
    report = json.loads((job.project / "mesh-report" / "mesh-report.json").read_text())
    assert sorted(c["cluster_id"] for c in report["clusters"]) == ["cluster1", "cluster2"]
    assert report["problems"] == [], report["problems"]


def test_uninstall_template_starts_as_a_plan(job, converged):
    """AWX's uninstall template starts as Check with Show changes: from the image it writes nothing and shows what
    a Run would remove from every cluster."""
    proc, writes = job.launch("uninstall")
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert sum(writes.values()) == 0, writes
    assert all(recap(proc.stdout)[c]["changed"] > 0 for c in ("cluster1", "cluster2")), recap(proc.stdout)
