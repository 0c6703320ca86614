"""playbooks/rotate-tokens.yml on the lab: a two-cluster multi-primary mesh gets new reader tokens in every remote
secret; every istiod re-syncs; the old tokens are then rejected (401) by the API server they were issued by, the new
ones work. Check mode writes nothing. Rotated twice more: from legacy token Secrets to TokenRequest tokens, and from
one bound TokenRequest token to the next (the old one is revoked by deleting the Secret it is bound to)."""
import base64
import re
import json
import ssl
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client as k8s_client, config as k8s_config

from conftest import changed_tasks

SECRET_PREFIX = "istio-remote-secret-"
EXPIRATION = 3600


def remote_secrets(lab):
    """{(consumer context, source cluster id): (token, server, CA PEM)} read with the kubernetes client."""
    out = {}
    for context in lab.contexts():
        api = k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=lab.env["KUBECONFIG"], context=context))
        for s in api.list_namespaced_secret("istio-system", label_selector="istio/multiCluster=true").items:
            cid = s.metadata.name[len(SECRET_PREFIX):]
            kc = yaml.safe_load(base64.b64decode(s.data[cid]))
            out[(context, cid)] = (kc["users"][0]["user"]["token"], kc["clusters"][0]["cluster"]["server"],
                                   base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]))
    return out


def status_with(token, server, ca_pem):
    """HTTP status of listing namespaces (what the reader account may do) with this bearer token."""
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as f:
        f.write(ca_pem)
        f.flush()
        ctx = ssl.create_default_context(cafile=f.name)
    req = urllib.request.Request(server + "/api/v1/namespaces?limit=1", headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def eventually_status(token, server, ca_pem, want, seconds=20):
    """The API server's token checks read Secrets through a cache: give a deletion a moment to be seen."""
    deadline = time.monotonic() + seconds
    while True:
        got = status_with(token, server, ca_pem)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(1)


def claims(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


class Flow:
    def __init__(self, lab, tmp):
        self.lab, self.inv = lab, tmp / "inventory.yml"
        inv = lab.inventory("multi-primary", self.inv, tmp / "ca")
        inv["all"]["vars"]["istio_token_expiration"] = EXPIRATION
        self.inv.write_text(yaml.safe_dump(inv))
        self.runs = {}

    def run(self, name, playbook, *extra):
        mark = self.lab.mark()
        started = time.monotonic()
        proc = self.lab.playbook(playbook, self.inv, *extra)
        out = dict(proc=proc, seconds=round(time.monotonic() - started, 1), writes=self.lab.writes(mark),
                   changed=changed_tasks(proc.stdout))
        print("\n%s: %ss, %s writes" % (name, out["seconds"], sum(out["writes"].values())))
        self.runs[name] = out
        assert proc.returncode == 0, "%s failed:\n%s\n%s" % (name, proc.stdout[-8000:], proc.stderr[-2000:])
        return out


@pytest.fixture(scope="module")
def flow(lab, tmp_path_factory):
    f = Flow(lab, tmp_path_factory.mktemp("rotate"))
    f.run("converge", "multi-primary.yml")
    f.before = remote_secrets(lab)
    return f


def tokens_status(old, new):
    """{(consumer, source): (HTTP status of the old token, of the new one)} against the API server that issued them."""
    return dict((key, (eventually_status(old[key][0], server, ca, 401), status_with(token, server, ca)))
                for key, (token, server, ca) in new.items())


def checked(flow):
    if "check" not in flow.runs:
        flow.run("check", "rotate-tokens.yml", "--check", "--diff")
        flow.after_check = remote_secrets(flow.lab)
    return flow


def rotated(flow):
    checked(flow)
    if "rotate" not in flow.runs:
        flow.run("rotate", "rotate-tokens.yml")
        flow.after = remote_secrets(flow.lab)
        flow.status = tokens_status(flow.before, flow.after)
    return flow


def rotated_to_token_request(flow):
    rotated(flow)
    if "rotate to token_request" not in flow.runs:
        flow.run("rotate to token_request", "rotate-tokens.yml", "-e", "istio_token_type=token_request")
        flow.bound = remote_secrets(flow.lab)
        flow.bound_status = tokens_status(flow.after, flow.bound)
        flow.run("rotate token_request again", "rotate-tokens.yml", "-e", "istio_token_type=token_request")
        flow.bound_again = remote_secrets(flow.lab)
        flow.bound_again_status = tokens_status(flow.bound, flow.bound_again)
    return flow


ROTATE_TASK = "meshops.istio.rotate_tokens : Issue a new reader token and write it into every consumer (the old one keeps working)"


def test_check_mode_writes_nothing_and_plans_every_rotation(flow):
    check = checked(flow).runs["check"]
    assert sum(check["writes"].values()) == 0, check["writes"]
    assert [t for t in check["changed"] if t[1] == ROTATE_TASK] == [("cluster1", ROTATE_TASK), ("cluster2", ROTATE_TASK)]
    assert flow.after_check == flow.before, "check mode changed a remote secret"
    assert [t for t in check["changed"] if "Revoke" in t[1]] == [], "nothing to revoke before the new tokens are out"


def test_every_remote_secret_gets_a_new_token(flow):
    rotated(flow)
    assert len(flow.before) == 2 and flow.before.keys() == flow.after.keys()
    for key, (token, server, ca) in flow.after.items():
        assert token != flow.before[key][0], key
        assert (server, ca) == flow.before[key][1:], key


def test_every_istiod_reports_every_cluster_synced(flow):
    rotated(flow)
    out = " ".join(flow.runs["rotate"]["proc"].stdout.split())
    for cluster, other in (("cluster1", "cluster2"), ("cluster2", "cluster1")):
        assert re.search(r"istiod-\S+: clusters %s=synced\(local\) %s=synced" % (cluster, other), out), out[-3000:]


def test_old_tokens_are_rejected_and_new_ones_work(flow):
    rotated(flow)
    # (old token, new token) HTTP status, per (consumer, source cluster)
    assert flow.status == dict((key, (401, 200)) for key in flow.before), flow.status


def test_token_request_rotation_revokes_the_bound_token(flow):
    rotated_to_token_request(flow)
    for key, (token, server, ca) in flow.bound.items():
        c = claims(token)
        assert c["kubernetes.io"]["secret"]["name"].startswith("istio-reader-service-account-istio-remote-secret-binding-")
        assert EXPIRATION - 300 < c["exp"] - c["iat"] <= EXPIRATION
        new = flow.bound_again[key][0]
        assert new != token and claims(new)["kubernetes.io"]["secret"]["name"] != c["kubernetes.io"]["secret"]["name"]
    # the legacy token replaced by a bound one, then that bound token replaced by the next
    assert flow.bound_status == dict((key, (401, 200)) for key in flow.bound), flow.bound_status
    assert flow.bound_again_status == dict((key, (401, 200)) for key in flow.bound), flow.bound_again_status
