"""Drift and check mode as a plan, on one two-cluster lab (multi-primary, two networks), object by object.

Each stage changes the clusters (or not), runs playbooks/multi-primary.yml with --check --diff, then for real, and
compares three sets of (cluster, "<action> <Kind> <namespace>/<name>"):
  predicted  the check run's own report (the `changes` role's summary), with 0 admin writes in the audit logs;
  actual     what the admin identity wrote during the real run, from the apiservers' audit logs
             (`meshlab writes --objects`): the Python client's writes object by object, Helm's by release (the
             release Secret `sh.helm.release.v1.<release>.v<N>` it writes), every other Helm write being an object
             of that release's manifest;
  reported   the real run's own report.
Stages: the empty lab; a partly converged mesh (cluster2 as a run stopped after its control plane leaves it: no
east-west gateway, no exposure Gateway, no reader token, so no remote secret for it in cluster1); a drifted mesh (a
remote secret deleted, another edited by hand, the network label changed, cacerts replaced with another intermediate
of the same root, istiod's release upgraded by hand with a value of its own). Then a cacerts of another root: the
converge and its check mode stop before any write and explain (clusters, fingerprints, what breaks, what to do); a
lost CA directory (a new root generated on the controller) is refused the same way; only istio_ca_replace_root=true
puts the mesh's root back, and reports it. Last, a converged mesh plans and writes nothing, without a single helm
module run (preflight found every release current).
"""
import base64
import datetime
import hashlib
import json
import time

import pytest
import yaml

from changes_report import actual_objects, report
from conftest import run

MODEL = "multi-primary-multi-network"
PLAYBOOK = "multi-primary.yml"
NS = "istio-system"


def kubectl(lab, ctx, *args):
    return run("kubectl", "--context", ctx, *args, env=lab.env).stdout


def get_json(lab, ctx, *args):
    return json.loads(kubectl(lab, ctx, *args, "-o", "json"))


class Stages:
    def __init__(self, lab, tmp):
        self.lab, self.tmp = lab, tmp
        self.ca_dir = tmp / "ca"
        self.inv = tmp / "inventory.yml"
        inventory = lab.inventory(MODEL, self.inv, self.ca_dir)
        self.hosts = {hv["kube_context"]: h for h, hv in inventory["all"]["children"]["istio_primary"]["hosts"].items()}
        self.ctx = {h: c for c, h in self.hosts.items()}
        self.results = {}

    def playbook(self, *extra):
        mark = self.lab.mark()
        started = time.monotonic()
        proc = self.lab.playbook(PLAYBOOK, self.inv, *extra)
        seconds = round(time.monotonic() - started, 1)
        writes = json.loads(self.lab.meshlab("writes", "--since", mark, "--objects"))
        return dict(proc=proc, seconds=seconds, writes=writes)

    def plan_and_apply(self, name):
        check = self.playbook("--check", "--diff")
        real = self.playbook("--diff")
        actual, problems = actual_objects(self.lab, real["writes"], self.hosts)
        self.results[name] = dict(check=check, real=real, actual=actual, problems=problems,
                                  predicted=report(check["proc"].stdout) if check["proc"].returncode == 0 else None,
                                  reported=report(real["proc"].stdout) if real["proc"].returncode == 0 else None)
        return self.results[name]


@pytest.fixture(scope="module")
def stages(lab, tmp_path_factory):
    return Stages(lab, tmp_path_factory.mktemp("drift"))


def assert_plan_holds(stage):
    check, real = stage["check"], stage["real"]
    assert check["proc"].returncode == 0, check["proc"].stdout[-5000:]
    assert real["proc"].returncode == 0, real["proc"].stdout[-5000:]
    assert all(len(w) == 0 for w in check["writes"].values()), f"check mode wrote: {check['writes']}"
    assert not stage["problems"], stage["problems"]
    assert stage["predicted"] == stage["actual"], (stage["predicted"], stage["actual"])
    assert stage["reported"] == stage["actual"], (stage["reported"], stage["actual"])


def test_empty_lab(stages):
    stage = stages.plan_and_apply("empty")
    assert_plan_holds(stage)
    for host, objs in stage["actual"].items():
        # Everything a cluster needs: namespace, cacerts, three releases, exposure Gateway, reader token, and the
        # other cluster's remote secret.
        assert {"create Namespace istio-system", "create Secret istio-system/cacerts",
                "install HelmRelease istio-system/istio-base", "install HelmRelease istio-system/istiod",
                "install HelmRelease istio-system/istio-eastwestgateway",
                "create Gateway istio-system/cross-network-gateway",
                "create Secret istio-system/istio-reader-service-account-istio-remote-secret-token"} <= objs, objs
        other = next(h for h in stages.ctx if h != host)
        assert f"create Secret istio-system/istio-remote-secret-{other}" in objs
    print(f"empty lab: check {stage['check']['seconds']}s, converge {stage['real']['seconds']}s")


def test_partly_converged_mesh(stages):
    """cluster2 as a run stopped after its control plane leaves it."""
    lab, c1, c2 = stages.lab, stages.ctx["cluster1"], stages.ctx["cluster2"]
    run("helm", "uninstall", "istio-eastwestgateway", "-n", NS, "--kube-context", c2, "--wait", env=lab.env)
    kubectl(lab, c2, "-n", NS, "delete", "gateways.networking.istio.io", "cross-network-gateway")
    kubectl(lab, c2, "-n", NS, "delete", "secret", "istio-reader-service-account-istio-remote-secret-token")
    kubectl(lab, c1, "-n", NS, "delete", "secret", "istio-remote-secret-cluster2")
    stage = stages.plan_and_apply("partial")
    assert_plan_holds(stage)
    assert stage["actual"] == {
        "cluster1": {"create Secret istio-system/istio-remote-secret-cluster2"},
        "cluster2": {"install HelmRelease istio-system/istio-eastwestgateway",
                     "create Gateway istio-system/cross-network-gateway",
                     "create Secret istio-system/istio-reader-service-account-istio-remote-secret-token"}}


def remote_kubeconfig(secret):
    (key, value), = secret["data"].items()
    return key, yaml.safe_load(base64.b64decode(value))


def test_drifted_mesh_is_restored_and_reported(stages):
    lab, c1, c2 = stages.lab, stages.ctx["cluster1"], stages.ctx["cluster2"]
    # (a) a remote secret deleted
    kubectl(lab, c2, "-n", NS, "delete", "secret", "istio-remote-secret-cluster1")
    # (b) a remote secret edited by hand: another server URL and a token that is not the reader's
    secret = get_json(lab, c1, "-n", NS, "get", "secret", "istio-remote-secret-cluster2")
    key, kubeconfig = remote_kubeconfig(secret)
    declared_server = kubeconfig["clusters"][0]["cluster"]["server"]
    kubeconfig["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig["users"][0]["user"]["token"] = "edited-by-hand"
    patch = {"data": {key: base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()}}
    kubectl(lab, c1, "-n", NS, "patch", "secret", "istio-remote-secret-cluster2", "--type=merge", "-p", json.dumps(patch))
    # (c) the network label changed
    kubectl(lab, c1, "label", "namespace", NS, "topology.istio.io/network=elsewhere", "--overwrite")
    # (d) cacerts replaced with material of the same root: cluster1's intermediate
    c1_cacerts = get_json(lab, c1, "-n", NS, "get", "secret", "cacerts")
    kubectl(lab, c2, "-n", NS, "patch", "secret", "cacerts", "--type=merge", "-p", json.dumps({"data": c1_cacerts["data"]}))
    # (e) istiod's release upgraded by hand with a value of its own: preflight's read of the release sees it, so the
    # helm task is not skipped
    run("helm", "upgrade", "istiod", lab.env["MESHLAB_ISTIO_CHARTS"] + "/istio-control/istio-discovery", "-n", NS,
        "--kube-context", c1, "--reuse-values", "--set", "pilot.env.MESHOPS_DRIFT=by-hand", env=lab.env)

    stage = stages.plan_and_apply("drift")
    assert_plan_holds(stage)
    assert stage["actual"] == {
        "cluster1": {"patch Namespace istio-system", "patch Secret istio-system/istio-remote-secret-cluster2",
                     "upgrade HelmRelease istio-system/istiod"},
        "cluster2": {"create Secret istio-system/istio-remote-secret-cluster1", "patch Secret istio-system/cacerts",
                     # istiod reads cacerts only when it starts
                     "patch Deployment istio-system/istiod"}}
    # The declared state is back, and the real run's verify (every istiod sees the other cluster synced) passed.
    ns = get_json(lab, c1, "get", "namespace", NS)
    assert ns["metadata"]["labels"]["topology.istio.io/network"] == "network1"
    dummy, kubeconfig = remote_kubeconfig(get_json(lab, c1, "-n", NS, "get", "secret", "istio-remote-secret-cluster2"))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == declared_server
    assert kubeconfig["users"][0]["user"]["token"] != "edited-by-hand"
    values = json.loads(run("helm", "get", "values", "istiod", "-n", NS, "--kube-context", c1, "-o", "json", env=lab.env).stdout)
    assert "MESHOPS_DRIFT" not in json.dumps(values), values
    held = get_json(lab, c2, "-n", NS, "get", "secret", "cacerts")["data"]
    assert base64.b64decode(held["ca-cert.pem"]) == (stages.ca_dir / "cluster2" / "ca-cert.pem").read_bytes()
    assert "Every istiod sees every other cluster synced" in stage["real"]["proc"].stdout
    print(f"drift: check {stage['check']['seconds']}s, converge {stage['real']['seconds']}s")


def foreign_root_cacerts():
    """cacerts data of a root that is not the mesh's (self-signed, also serving as the intermediate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Elsewhere"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    files = {"ca-cert.pem": pem, "ca-key.pem": key_pem, "root-cert.pem": pem, "cert-chain.pem": pem}
    fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return {k: base64.b64encode(v).decode() for k, v in files.items()}, ":".join(fp[i:i + 2] for i in range(0, 64, 2))


def pem_fingerprint(pem):
    der = base64.b64decode("".join(line for line in pem.decode().splitlines() if not line.startswith("-----")))
    fp = hashlib.sha256(der).hexdigest().upper()
    return ":".join(fp[i:i + 2] for i in range(0, 64, 2))


def flat(stdout):
    """The output with the YAML callback's line wrapping and quote doubling undone."""
    return " ".join(stdout.split()).replace("''", "'")


def assert_refused(run_result, mismatched, matching):
    out = flat(run_result["proc"].stdout)
    assert run_result["proc"].returncode != 0, out[-4000:]
    assert "Root of trust mismatch; no cacerts was written." in out, out[-4000:]
    for host in mismatched:
        assert f"Cluster {host} ({host}) holds SHA256 " in out, out[-4000:]
    if matching:
        assert "Clusters holding the mesh's root: " + ", ".join(matching) in out
    else:
        assert "Clusters holding the mesh's root" not in out
    assert "cross-cluster mTLS" in out and "istio_ca_replace_root=true" in out
    assert all(len(w) == 0 for w in run_result["writes"].values()), run_result["writes"]


def test_another_root_is_refused_explained_and_replaced_only_on_request(stages):
    lab, c2 = stages.lab, stages.ctx["cluster2"]
    data, foreign_fp = foreign_root_cacerts()
    kubectl(lab, c2, "-n", NS, "patch", "secret", "cacerts", "--type=merge", "-p", json.dumps({"data": data}))
    mesh_fp = pem_fingerprint((stages.ca_dir / "root-cert.pem").read_bytes())

    for extra in [("--check", "--diff"), ()]:
        result = stages.playbook(*extra)
        assert_refused(result, ["cluster2"], ["cluster1"])
        out = flat(result["proc"].stdout)
        assert f"holds SHA256 {foreign_fp} (CN=Foreign Root CA,O=Elsewhere)" in out
        assert f"is SHA256 {mesh_fp} (CN=Root CA,O=Istio)" in out

    # The controller's CA directory lost: a new root is generated on the controller, and every cluster is refused.
    lost = stages.tmp / "ca-lost"
    result = stages.playbook("-e", f"istio_ca_dir={lost}")
    assert_refused(result, ["cluster1", "cluster2"], [])
    new_fp = pem_fingerprint((lost / "root-cert.pem").read_bytes())
    assert new_fp != mesh_fp and f"is SHA256 {new_fp}" in flat(result["proc"].stdout)
    assert get_json(lab, c2, "-n", NS, "get", "secret", "cacerts")["data"] == data, "a refused run changed cacerts"

    # Only on request: the mesh's root goes back into cluster2 (planned, done and reported alike).
    check = stages.playbook("--check", "--diff", "-e", "istio_ca_replace_root=true")
    real = stages.playbook("--diff", "-e", "istio_ca_replace_root=true")
    actual, problems = actual_objects(lab, real["writes"], stages.hosts)
    stage = dict(check=check, real=real, actual=actual, problems=problems, predicted=report(check["proc"].stdout),
                 reported=report(real["proc"].stdout) if real["proc"].returncode == 0 else None)
    assert_plan_holds(stage)
    assert actual == {"cluster1": set(),
                      "cluster2": {"patch Secret istio-system/cacerts", "patch Deployment istio-system/istiod"}}
    held = get_json(lab, c2, "-n", NS, "get", "secret", "cacerts")["data"]
    assert base64.b64decode(held["root-cert.pem"]) == (stages.ca_dir / "root-cert.pem").read_bytes()


def test_converged_mesh_plans_nothing(stages):
    """Last: after all of the above, a plan and a run change nothing and write nothing, and say so."""
    stage = stages.plan_and_apply("converged")
    assert_plan_holds(stage)
    assert stage["actual"] == {"cluster1": set(), "cluster2": set()}
    assert all(len(w) == 0 for w in stage["real"]["writes"].values())
    # Preflight found the namespace as declared, cacerts holding the controller's files and every release at its chart
    # and values: no network_label, cacerts or helm module run at all, in the plan or the run.
    for run_result in (stage["check"], stage["real"]):
        for task in ("meshops.istio.network : Create the Istio system namespace with this cluster's network label",
                     "meshops.istio.trust : Plug the intermediate into Istio (Secret cacerts, before istiod starts)",
                     "meshops.istio.control_plane : Install Istio's base chart (CRDs, reader service account)",
                     "meshops.istio.control_plane : Install istiod",
                     "meshops.istio.eastwest_gateway : Install the east-west gateway for this cluster's network"):
            block = run_result["proc"].stdout.split(f"TASK [{task}]", 1)[1].split("TASK [", 1)[0]
            assert "skipping: [cluster1]" in block and "skipping: [cluster2]" in block, (task, block)
