"""Expiring reader tokens (TokenRequest): the mesh converges and syncs; a re-run keeps the tokens (0 writes)."""
import base64
import json

import yaml

from conftest import run


def test_token_request_mesh_converges_and_keeps_its_tokens(lab, tmp_path):
    inv_path = tmp_path / "inventory.yml"
    inv = lab.inventory("multi-primary", inv_path, tmp_path / "ca")
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
