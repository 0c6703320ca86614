"""A two-network mesh the collection built carries requests across networks only through the east-west gateways:
Istio 1.30.3 multi-primary on two networks (multi-primary.yml, Helm, that release's charts), real Envoy sidecars
and gateways. curl from each cluster is answered by helloworld v1 (network1) and v2 (network2); the requests to the
other network pass its gateway's 15443 listener; a pod IP of the other network is not reachable directly.
The collection's own traffic check (the verify role) passes in the converge, and fails, naming the likely cause, on
faults only traffic shows: a cacerts of another root made by hand, a removed cross-network-gateway, a remote secret
deleted by hand; the next converge repairs each (the root with istio_ca_replace_root, as the refusal says) and
traffic passes again. Last, the version matrix's flow for 1.30.3 on this mesh: a re-run writes nothing, and the
uninstall returns every cluster to the object set it held before the install."""
import json
import subprocess

import pytest
from meshlab import paths

import cluster_snapshot
import traffic

RELEASE = "1.30.3"


@pytest.fixture(scope="module")
def mesh(real_lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("traffic2")
    inv = d / "inventory.yml"
    real_lab.meshlab("inventory", "--model", "multi-primary-multi-network", "--istio", RELEASE, "--ca-dir",
                     str(d / "ca"), "-o", str(inv))
    real_lab.before = cluster_snapshot.take(real_lab.contexts(), env=real_lab.env)
    proc = real_lab.playbook("multi-primary.yml", inv)
    assert proc.returncode == 0, proc.stdout[-6000:]
    real_lab.converge_stdout = proc.stdout
    real_lab.inventory_path = inv
    traffic.deploy(real_lab, paths.samples_dir(RELEASE))
    return real_lab


def test_the_converge_verified_traffic_from_every_cluster(mesh):
    answers = traffic.verify_answers(mesh.converge_stdout)
    assert sorted(answers) == ["cluster1", "cluster2"] and all(set(v) == {"v1", "v2"} for v in answers.values()), answers


def test_every_cluster_is_answered_by_both_versions_through_the_gateways(mesh):
    c1, c2 = mesh.contexts()
    before = {ctx: traffic.gateway_connections(mesh, ctx) for ctx in (c1, c2)}
    for ctx in (c1, c2):
        counts = traffic.answered_by_both(mesh, ctx)
        assert set(counts) == {"v1", "v2"}, counts
    after = {ctx: traffic.gateway_connections(mesh, ctx) for ctx in (c1, c2)}
    # Each cluster's requests to the other version entered the other network through its gateway.
    assert after[c1] > before[c1] and after[c2] > before[c2], (before, after)


def test_pod_ip_of_the_other_network_is_unreachable(mesh):
    c1, c2 = mesh.contexts()
    pod = json.loads(traffic.kubectl(mesh, c1, "get", "pods", "-n", "sample", "-l", "app=helloworld", "-o",
                                     "json").stdout)["items"][0]
    out = traffic.kubectl(mesh, c2, "exec", "-n", "sample", "deploy/curl", "-c", "curl", "--", "curl", "-sS",
                          "--max-time", "3", f"http://{pod['status']['podIP']}:5000/hello", check=False)
    assert "Hello version" not in out.stdout, out.stdout


def test_server_sees_the_client_spiffe_identity_across_networks(mesh):
    ids = set()
    for ctx in mesh.contexts():
        ids |= set(traffic.server_saw_client_identity(mesh, ctx))
    assert "spiffe://cluster.local/ns/sample/sa/curl" in ids, ids


# ---- faults only traffic shows (last in this file: they change the mesh the tests above read) -------------------
# The collection's check in its own namespace, so the docs-style samples above stay untouched.
VERIFY_NS = ("-e", "istio_verify_traffic_namespace=verify-traffic", "-e", "istio_verify_timeout=30")


def other_root_cacerts(mesh, ctx, tmp):
    """A cacerts Secret of a new root, made by hand as Istio's "Plug in CA certificates" page does with openssl."""
    sh = f"""set -e; cd {tmp}
openssl req -x509 -newkey rsa:2048 -nodes -keyout root-key.pem -out root-cert.pem -days 30 -subj "/O=Istio/CN=Root CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,digitalSignature"
openssl req -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.csr -subj "/O=Istio/CN=Intermediate CA/L=cluster2"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,digitalSignature\nsubjectAltName=DNS:istiod.istio-system.svc\n' > ext
openssl x509 -req -in ca.csr -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -out ca-cert.pem -days 30 -extfile ext
cat ca-cert.pem root-cert.pem > cert-chain.pem"""
    subprocess.run(["bash", "-c", sh], check=True, capture_output=True)
    secret = traffic.kubectl(mesh, ctx, "create", "secret", "generic", "cacerts", "-n", "istio-system", "--dry-run=client",
                             "-o", "yaml", *[f"--from-file={tmp}/{f}" for f in ("ca-cert.pem", "ca-key.pem", "root-cert.pem",
                                                                                "cert-chain.pem")]).stdout
    proc = subprocess.run(["kubectl", "--context", ctx, "replace", "-f", "-"], input=secret, env=mesh.env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


FAULTS = {
    # break(mesh, c1, c2, tmp); the cause verify must name; extra converge arguments the repair needs
    "cacerts-of-another-root": (lambda m, c1, c2, tmp: other_root_cacerts(m, c2, tmp),
                                "a trust problem", ("-e", "istio_ca_replace_root=true")),
    "cross-network-gateway-removed": (lambda m, c1, c2, tmp: traffic.kubectl(
        m, c2, "delete", "gateways.networking.istio.io", "-n", "istio-system", "cross-network-gateway"),
        "the east-west gateway of network2", ()),
    "remote-secret-deleted": (lambda m, c1, c2, tmp: traffic.kubectl(
        m, c1, "delete", "secret", "-n", "istio-system", "istio-remote-secret-cluster2"),
        "know no helloworld endpoint outside cluster1", ()),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_verify_names_the_fault_and_the_converge_repairs_it(mesh, fault, tmp_path):
    c1, c2 = mesh.contexts()
    breaker, cause, repair = FAULTS[fault]
    breaker(mesh, c1, c2, tmp_path)
    failed = mesh.playbook("verify.yml", mesh.inventory_path, *VERIFY_NS)
    assert failed.returncode != 0, failed.stdout[-4000:]
    # Which cluster got which answers, and the likely cause.
    assert "requests answered by v" in failed.stdout and "; never by v" in failed.stdout, failed.stdout[-4000:]
    assert cause in failed.stdout, failed.stdout[-6000:]
    # The samples never stay behind after a failure.
    for ctx in (c1, c2):
        assert traffic.kubectl(mesh, ctx, "get", "namespace", "verify-traffic", check=False).returncode != 0
    fixed = mesh.playbook("multi-primary.yml", mesh.inventory_path, *VERIFY_NS, *repair)
    assert fixed.returncode == 0, fixed.stdout[-6000:]
    answers = traffic.verify_answers(fixed.stdout)
    assert sorted(answers) == ["cluster1", "cluster2"] and all(set(v) == {"v1", "v2"} for v in answers.values()), answers


def test_a_rerun_writes_nothing_and_the_uninstall_leaves_the_clusters_as_they_were(mesh):
    mark = mesh.mark()
    rerun = mesh.playbook("multi-primary.yml", mesh.inventory_path)
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert set(mesh.writes(mark).values()) == {0}, mesh.writes(mark)
    assert "Traffic check SKIPPED: this run changed nothing in the mesh" in " ".join(rerun.stdout.split())
    # The docs-style samples are the user's, not the collection's: removed by hand first, as a user would.
    for ctx in mesh.contexts():
        traffic.kubectl(mesh, ctx, "delete", "namespace", traffic.SAMPLE_NS, "--wait=true", "--timeout=120s")
    gone = mesh.playbook("uninstall.yml", mesh.inventory_path, "-e", "istio_purge_crds=true")
    assert gone.returncode == 0, gone.stdout[-4000:]
    assert cluster_snapshot.compare(mesh.before, cluster_snapshot.take(mesh.contexts(), env=mesh.env)) == {}
