"""playbooks/rotate-tokens.yml on the lab: a two-cluster multi-primary mesh gets new reader tokens in every remote
secret; every istiod re-syncs; the old tokens are then rejected (401) by the API server they were issued by, the new
ones work. Check mode writes nothing. A normal converge afterwards keeps the new tokens (no write to the remote
secrets, the old tokens stay revoked). Rotated twice more: from legacy token Secrets to TokenRequest tokens, and from
one bound TokenRequest token to the next (the old one is revoked by deleting the Secret it is bound to); a converge
with TokenRequest tokens keeps the bound ones too."""
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

from conftest import NotReached, changed_tasks, wait_until

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
    """The API server's token checks read Secrets through a cache: a deletion is seen a moment later. The status once it
    is want, else (after seconds) the last one, which the test reports with every other token's."""
    try:
        return wait_until(lambda: status_with(token, server, ca_pem), seconds, f"HTTP {want} from {server}",
                          done=lambda got: got == want)
    except NotReached as e:
        return e.last


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
        seconds = round(time.monotonic() - started, 1)
        out = dict(proc=proc, seconds=seconds, writes=self.lab.writes(mark), changed=changed_tasks(proc.stdout),
                   objects=json.loads(self.lab.meshlab("writes", "--since", mark, "--objects")))
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


def converged_after_rotation(flow):
    rotated(flow)
    if "converge after rotate" not in flow.runs:
        flow.run("converge after rotate", "multi-primary.yml")
        flow.converged = remote_secrets(flow.lab)
        flow.converged_status = tokens_status(flow.before, flow.converged)
    return flow


def rotated_to_token_request(flow):
    converged_after_rotation(flow)
    if "rotate to token_request" not in flow.runs:
        flow.run("rotate to token_request", "rotate-tokens.yml", "-e", "istio_token_type=token_request")
        flow.bound = remote_secrets(flow.lab)
        flow.bound_status = tokens_status(flow.after, flow.bound)
        flow.run("rotate token_request again", "rotate-tokens.yml", "-e", "istio_token_type=token_request")
        flow.bound_again = remote_secrets(flow.lab)
        flow.bound_again_status = tokens_status(flow.bound, flow.bound_again)
    return flow


def converged_with_token_request(flow):
    rotated_to_token_request(flow)
    if "converge token_request" not in flow.runs:
        flow.run("converge token_request", "multi-primary.yml", "-e", "istio_token_type=token_request")
        flow.bound_converged = remote_secrets(flow.lab)
        flow.bound_converged_status = tokens_status(flow.bound, flow.bound_converged)
    return flow


def token_secret_writes(run):
    """(context, verb, Secret name) of every write to a remote secret or to a reader token or binding Secret."""
    return sorted((ctx, w["verb"], w["name"]) for ctx, records in run["objects"].items() for w in records
                  if w["resource"] == "secrets" and (w["name"].startswith(SECRET_PREFIX) or "-istio-remote-secret-" in w["name"]))


def assert_synced(run):
    out = " ".join(run["proc"].stdout.split())
    for cluster, other in (("cluster1", "cluster2"), ("cluster2", "cluster1")):
        assert re.search(r"istiod-\S+: clusters %s=synced\(local\) %s=synced" % (cluster, other), out), out[-3000:]


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
    assert_synced(flow.runs["rotate"])


def test_old_tokens_are_rejected_and_new_ones_work(flow):
    rotated(flow)
    # (old token, new token) HTTP status, per (consumer, source cluster)
    assert flow.status == dict((key, (401, 200)) for key in flow.before), flow.status


def test_converge_after_rotation_keeps_the_new_tokens(flow):
    """The inventory's normal converge neither re-issues nor reverts the rotated tokens: no write to a remote secret
    or a token Secret, the consumers hold the rotated tokens, the old ones stay revoked, every istiod stays synced."""
    converged_after_rotation(flow)
    run = flow.runs["converge after rotate"]
    assert token_secret_writes(run) == [], token_secret_writes(run)
    assert flow.converged == flow.after, "the converge changed a remote secret's token, server or CA"
    assert flow.converged_status == dict((key, (401, 200)) for key in flow.before), flow.converged_status
    assert_synced(run)
    # Nothing else had drifted either: the whole converge is a no-op.
    assert run["changed"] == [] and sum(run["writes"].values()) == 0, (run["changed"], run["writes"])


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


def test_converge_with_token_request_keeps_the_bound_tokens(flow):
    converged_with_token_request(flow)
    run = flow.runs["converge token_request"]
    assert token_secret_writes(run) == [], token_secret_writes(run)
    assert flow.bound_converged == flow.bound_again, "the converge re-minted or reverted a bound token"
    # the token of the first TokenRequest rotation stays revoked, the current one works
    assert flow.bound_converged_status == dict((key, (401, 200)) for key in flow.bound), flow.bound_converged_status
    assert_synced(run)
    assert run["changed"] == [] and sum(run["writes"].values()) == 0, (run["changed"], run["writes"])
