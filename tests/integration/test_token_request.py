"""Expiring reader tokens (TokenRequest): the mesh converges and syncs; a re-run keeps the tokens (0 writes)."""
import base64
import json

import pytest
import yaml

from conftest import run


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    """One mesh CA for the module's lab: a new root would (rightly) be refused by the clusters' cacerts."""
    return tmp_path_factory.mktemp("ca")


def test_token_request_mesh_converges_and_keeps_its_tokens(lab, ca_dir, tmp_path):
    inv_path = tmp_path / "inventory.yml"
    inv = lab.inventory("multi-primary", inv_path, ca_dir)
    inv["all"]["vars"].update(istio_token_type="token_request", istio_token_expiration=3600)
    inv_path.write_text(yaml.safe_dump(inv))

    lab.playbook("multi-primary.yml", inv_path, check=True)
    secret = json.loads(run("kubectl", "--context", lab.contexts()[0], "-n", "istio-system", "get", "secret",
                            "istio-remote-secret-cluster2", "-o", "json", env=lab.env).stdout)
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["cluster2"]))
    token = kubeconfig["users"][0]["user"]["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:istio-system:istio-reader-service-account"
    assert 3000 < claims["exp"] - claims["iat"] <= 3600, "the requested expiry"
    # no legacy token Secret was created for this mesh
    names = run("kubectl", "--context", lab.contexts()[1], "-n", "istio-system", "get", "secrets", "-o", "name",
                env=lab.env).stdout
    assert "istio-reader-service-account-istio-remote-secret-token" not in names

    mark = lab.mark()
    proc = lab.playbook("multi-primary.yml", inv_path, check=True)
    assert all(n == 0 for n in lab.writes(mark).values()), "a valid token is kept, not re-minted"
    assert "changed=0" in proc.stdout


def test_traffic_check_says_it_was_skipped_on_simulated_nodes(lab, ca_dir, tmp_path):
    """Istio's helloworld check needs real pods; on simulated nodes it must say so instead of passing silently, and
    at the end of a converge that changed nothing it says that instead."""
    inv_path = tmp_path / "inventory.yml"
    lab.inventory("multi-primary", inv_path, ca_dir)
    proc = lab.playbook("verify.yml", inv_path, check=True)
    out = " ".join(proc.stdout.split())
    assert "Traffic check SKIPPED: the nodes of cluster1, cluster2 are simulated (kwok)" in out, proc.stdout[-3000:]
    for step in ("Sample namespace, in the mesh]", "Curl helloworld from this cluster until every version answers]"):
        result = out.split(step)[1].split("TASK [")[0]
        assert "ok:" not in result and "changed:" not in result and "skipping:" in result, f"{step} ran on simulated nodes"
    # This inventory's tokens differ from the module's first test: the first converge changes them, the second nothing.
    changed = " ".join(lab.playbook("multi-primary.yml", inv_path, check=True).stdout.split())
    assert "Traffic check SKIPPED: the nodes of cluster1, cluster2 are simulated" in changed, changed[-3000:]
    rerun = " ".join(lab.playbook("multi-primary.yml", inv_path, check=True).stdout.split())
    assert "Traffic check SKIPPED: this run changed nothing in the mesh" in rerun, rerun[-3000:]
