"""No reader token and no CA private key ever appears in what Ansible prints or logs, even at -vvvv --diff.

The mesh is converged, converged again and planned in check mode (all -vvvv --diff), then checked with
verify.yml -vvvv, each run with its own ANSIBLE_LOG_PATH. Then the actual secret bytes are read back from where
they live (the clusters' Secrets, the CA directory on the controller) and searched for in every captured output and
log: whole, and as fragments (any 32 characters of a token past its header, any 40 characters of a key's base64),
also base64-encoded at any alignment (a token inside a base64 kubeconfig, a key inside a Secret's data).
"""
import base64
import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run

MODEL = "multi-primary-multi-network"
TOKEN_SECRET = "istio-reader-service-account-istio-remote-secret-token"
REMOTE_SECRET_PREFIX = "istio-remote-secret-"
TOKEN_WINDOW = 32
KEY_WINDOW = 40
# base64 of a PEM starts and ends with the same bytes for every RSA key ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
# "-----END RSA PRIVATE KEY-----\n"): fragments of those parts are not this key's secret.
PEM_B64_COMMON = 64

RUNS = {
    # name: (playbook, extra ansible-playbook arguments)
    "converge": ("multi-primary.yml", ("-vvvv", "--diff")),
    "converge again": ("multi-primary.yml", ("-vvvv", "--diff")),
    "check": ("multi-primary.yml", ("--check", "--diff", "-vvvv")),
    "verify": ("verify.yml", ("-vvvv",)),
}


class Needle:
    """One form of a secret (`secret` names it): found when `value` occurs whole or, with `window`, when any `window`
    consecutive characters of the secret part (`part`, default value[skip:len(value) - skip]) occur."""

    def __init__(self, secret, form, value, window=None, skip=0, part=None, origin=None):
        assert value, f"empty secret: {secret} ({form})"
        self.secret, self.form, self.value, self.window, self.origin = secret, form, value, window, origin
        self.part = part if part is not None else value[skip:len(value) - skip]
        self.common = set()  # fragments that other secrets have too (claims every token of a cluster carries)

    def fragments(self):
        if not self.window:
            return []
        return [f for f in (self.part[i:i + self.window] for i in range(len(self.part) - self.window + 1))
                if f not in self.common]


def windows(text, size):
    return {text[i:i + size] for i in range(len(text) - size + 1)}


def find_leaks(text, needles):
    """(secret, form, fragment) of every needle found in text (fragment None: the whole value)."""
    seen = {size: windows(text, size) for size in {n.window for n in needles if n.window}}
    leaks = []
    for n in needles:
        if n.value in text:
            leaks.append((n.secret, n.form, None))
            continue
        hit = next((f for f in n.fragments() if f in seen[n.window]), None)
        if hit is not None:
            leaks.append((n.secret, n.form, hit))
    return leaks


def base64_forms(data):
    """What base64 makes of data inside any longer bytes: one string per alignment (data starting 0, 1 or 2 bytes
    into a 3-byte group), without the characters that also encode the neighbouring bytes."""
    forms = []
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + data).decode("ascii").rstrip("=")
        head = 4 if k else 0
        tail = 4 if (k + len(data)) % 3 else 0
        forms.append((k, encoded[head:len(encoded) - tail]))
    return forms


def kubectl_json(lab, context, *args):
    return json.loads(run("kubectl", "--context", context, *args, "-o", "json", env=lab.env).stdout)


def token_needles(secret, token):
    """The token, and the token base64-encoded inside anything (a Secret's data, a base64 kubeconfig). Fragments
    count from the claims on: a JWT's header (algorithm, signing key ID) is the same in every token of a cluster."""
    header, dot, signed = token.partition(".")
    assert dot and len(signed) > 2 * TOKEN_WINDOW, f"{secret} is not a JWT"
    return [Needle(secret, "as is", token, TOKEN_WINDOW, part=signed, origin=token)] + [
        Needle(secret, f"base64, offset {k}", whole, TOKEN_WINDOW, part=part, origin=token)
        for (k, whole), (dummy, part) in zip(base64_forms(token.encode("utf-8")), base64_forms(signed.encode("utf-8")))]


def drop_common_fragments(needles):
    """Tokens share claims (issuer, namespace, account name): a fragment that another token has too says which
    token leaked no better than the other one's, so only fragments of this token alone count for it."""
    fragments = {}
    for n in needles:
        if n.origin is not None:
            fragments.setdefault(n.origin, set()).update(n.fragments())
    for n in needles:
        if n.origin is not None:
            n.common = set().union(*(f for origin, f in fragments.items() if origin != n.origin))


def pem_needles(secret, pem):
    """The key's base64 body (fragments of it) and the base64 of the whole PEM (as a Secret's data holds it, or
    inside anything else base64-encoded)."""
    lines = pem.decode("ascii").strip().splitlines()
    assert lines[0].startswith("-----BEGIN") and "PRIVATE KEY" in lines[0], f"{secret} is not a PEM private key"
    body = "".join(line for line in lines if not line.startswith("-----"))
    return [Needle(secret, "PEM body", body, KEY_WINDOW)] + [
        Needle(secret, f"base64 of the PEM, offset {k}", form, KEY_WINDOW, PEM_B64_COMMON) for k, form in base64_forms(pem)]


def collect_secrets(lab, inventory, ca_dir):
    """Every secret the runs handled, read from where it lives: the clusters and the CA directory."""
    hosts = inventory["all"]["children"]["istio_primary"]["hosts"]
    namespace = inventory["all"]["vars"].get("istio_system_namespace", "istio-system")
    needles, tokens, distributed = [], set(), set()
    for host, hv in sorted(hosts.items()):
        ctx = hv["kube_context"]
        secrets = {s["metadata"]["name"]: s for s in kubectl_json(lab, ctx, "-n", namespace, "get", "secrets")["items"]}
        assert TOKEN_SECRET in secrets, f"{host}: no Secret {namespace}/{TOKEN_SECRET}"
        token = base64.b64decode(secrets[TOKEN_SECRET]["data"]["token"]).decode("utf-8")
        tokens.add(token)
        needles += token_needles(f"{host}: reader token in {TOKEN_SECRET}", token)

        remote = sorted(n for n in secrets if n.startswith(REMOTE_SECRET_PREFIX))
        assert len(remote) == len(hosts) - 1, f"{host}: expected a remote secret per other cluster, got {remote}"
        for name in remote:
            for key, value in secrets[name]["data"].items():
                for user in yaml.safe_load(base64.b64decode(value))["users"]:
                    distributed.add(user["user"]["token"])
                    needles += token_needles(f"{host}: token in {name}[{key}] user {user['name']}", user["user"]["token"])

        stored = secrets["cacerts"]["data"]["ca-key.pem"]
        intermediate = (Path(ca_dir) / hv.get("istio_cluster_id", host) / "ca-key.pem").read_bytes()
        assert base64.b64decode(stored) == intermediate, f"{host}: cacerts holds another key than {ca_dir}"
        secret = f"{host}: intermediate key ({ca_dir}/{host}/ca-key.pem, cacerts data.ca-key.pem)"
        needles += pem_needles(secret, intermediate)
        needles.append(Needle(secret, "cacerts data.ca-key.pem", stored, KEY_WINDOW, PEM_B64_COMMON))
    needles += pem_needles(f"root key ({ca_dir}/root-key.pem)", (Path(ca_dir) / "root-key.pem").read_bytes())

    # Each remote secret carries its source cluster's reader token: what was read is what was distributed.
    assert distributed and distributed <= tokens, "a remote secret holds a token that is no reader token Secret's"
    drop_common_fragments(needles)
    return needles


@pytest.fixture(scope="module")
def runs(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets")
    ca_dir = d / "ca"
    inv_path = d / "inventory.yml"
    inventory = lab.inventory(MODEL, inv_path, ca_dir)
    out = {}
    for i, (name, (playbook, args)) in enumerate(RUNS.items()):
        log = d / f"ansible-{i}.log"
        env = dict(lab.env, ANSIBLE_LOG_PATH=str(log))
        proc = run("ansible-playbook", "-i", str(inv_path), str(REPO / "playbooks" / playbook), *args, env=env,
                   check=False)
        out[name] = (proc, log)
        if proc.returncode != 0:
            break  # the next runs would say nothing more; test_every_run_succeeds reports this one
    return inventory, ca_dir, out


@pytest.fixture(scope="module")
def needles(lab, runs):
    inventory, ca_dir, out = runs
    assert all(p.returncode == 0 for p, dummy in out.values()), "a run failed: see test_every_run_succeeds"
    return collect_secrets(lab, inventory, ca_dir)


def test_every_run_succeeds(runs):
    out = runs[2]
    for name, (proc, log) in out.items():
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
        # The runs really were at -vvvv and really logged: otherwise a clean search would prove nothing.
        assert "verbosity: 4" in proc.stdout, f"{name} did not run at -vvvv"
        assert "AnsiballZ_" in log.read_text(), f"{name}: ANSIBLE_LOG_PATH {log} holds no -vvvv module run"
    assert list(out) == list(RUNS)
    # The first converge diffed the Secrets it wrote (cacerts, remote secrets), as fingerprints.
    assert "<redacted sha256:" in out["converge"][0].stdout


def test_the_search_finds_secrets_where_they_are(lab, runs, needles):
    """The search itself works: it finds every secret, in every form, where it is."""
    inventory, ca_dir, dummy = runs
    hosts = inventory["all"]["children"]["istio_primary"]["hosts"]
    everything = {n.secret for n in needles}
    assert len(everything) == 3 * len(hosts) + 1, sorted(everything)  # per cluster 2 tokens and a key; the root

    # The Secrets as the API returns them (tokens base64-encoded: in a token Secret, inside a remote Secret's
    # base64 kubeconfig) and the key files as they are.
    raw = "".join(json.dumps(kubectl_json(lab, hv["kube_context"], "-n", "istio-system", "get", "secrets"))
                  for hv in hosts.values())
    raw += "".join(p.read_text() for p in sorted(Path(ca_dir).rglob("*-key.pem")))
    found = {secret for secret, dummy, dummy2 in find_leaks(raw, needles)}
    assert found == everything, f"not found where they are: {sorted(everything - found)}"

    # Every form of every secret, cut as a careless log line would show a piece of it.
    for n in needles:
        if n.window:
            fragments = n.fragments()
            assert len(fragments) > 50, f"{n.secret} ({n.form}): too few fragments of its own to search for"
            cut = fragments[len(fragments) // 2]
            assert find_leaks(f"leak: x{cut}y...", [n]), f"{n.secret} ({n.form}) is not found when cut"
    # A key's base64 body wrapped at another width than the PEM's.
    body = next(n for n in needles if n.form == "PEM body")
    wrapped = "\n".join(body.value[i:i + 76] for i in range(0, len(body.value), 76))
    assert find_leaks(wrapped, [body])


@pytest.mark.parametrize("name", list(RUNS))
def test_no_secret_in_output_or_log(name, runs, needles):
    proc, log = runs[2][name]
    for what, text in ((f"{name}: stdout+stderr", proc.stdout + proc.stderr),
                       (f"{name}: ansible.log {log}", log.read_text())):
        leaks = find_leaks(text, needles)
        # Say what leaked and where, without repeating the secret itself.
        assert not leaks, f"{what} leaks: " + "; ".join(
            f"{secret} as {form}" + (f" (a fragment: {frag[:6]}...)" if frag else " (whole)") for secret, form, frag in leaks)
