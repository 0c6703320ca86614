"""Faults on a three-cluster lab (multi-primary, one network), one flow in order:

1. cluster3's kube-apiserver is stopped before a run: preflight names host cluster3, and nothing is written to any
   cluster (0 admin writes); the API server is started again.
2. A converge from empty, with cluster3's API server killed (SIGKILL, by pid) when the remote-secret task starts:
   the test callback meshlab_fault does it from Ansible's main process before any host runs that task, so the fault
   lands at the same point every time. By then the namespaces, CA, control planes of all three clusters are in place
   and the remote secrets are half done. The run fails on every host naming cluster3; every remote secret in the
   reachable clusters is a complete kubeconfig (server, CA, the source's actual reader token) and exactly the ones
   the failure messages report as written; none comes from or went to cluster3.
3. The API server is started again (same port, certificates, etcd data); a re-run converges and verifies.
4. No orphans: uninstall (with CRDs) and a clean converge give the same object set in every cluster as the
   recovered mesh held.
The fault runs (1-3) are at -vvvv with their own ANSIBLE_LOG_PATH; no reader token and no CA private key appears in any output or
log, the failed run's included (the search is test_secrets.py's).
"""
import base64
import collections
import json
import re
import time

import pytest
import yaml

import cluster_snapshot
from conftest import REPO, NotReached, run, wait_until
from test_secrets import collect_secrets, find_leaks

MODEL = "multi-primary"
FAULT_INDEX = 3
FAULT_HOST = "cluster3"
REMOTE_SECRET_TASK = "Give every consumer's istiod read access to this cluster"
PREFIX = "istio-remote-secret-"
VERBOSE = ("-vvvv", "--diff")
# Kinds whose names end in generated suffixes (pod-template hash, random): compared by prefix and count.
GENERATED = {"Pod", "ReplicaSet", "EndpointSlice.discovery.k8s.io", "WorkloadEntry.networking.istio.io",
             "ControllerRevision.apps"}
SUFFIX = re.compile(r"(-[bcdfghjklmnpqrstvwxz2456789]{5,10})+$")
# ClusterIP allocations, named by the (random) address: compared by count.
BY_COUNT = {"IPAddress.networking.k8s.io"}
# What istiod (root cert and CRL ConfigMaps in every namespace, ConfigMap leader-election locks) and
# kube-controller-manager (kube-root-ca.crt and the default ServiceAccount in every namespace) write on their own time.
OWN_TIME = {("ConfigMap", "istio-ca-root-cert"), ("ConfigMap", "istio-ca-crl"), ("ConfigMap", "kube-root-ca.crt"),
            ("ServiceAccount", "default")}
LEADER = "control-plane.alpha.kubernetes.io/leader"
# After an API server outage client-go's reconnection backoff can reach a minute, then come the controllers' resyncs.
SETTLE_SECONDS = 180


def normalized(snapshot):
    out = {}
    for ctx, objects in snapshot.items():
        names = []
        for obj in objects:
            kind, dummy, ref = obj.partition(" ")
            if kind in BY_COUNT:
                names.append(f"{kind} *")
            else:
                names.append(f"{kind} {SUFFIX.sub('-*', ref)}" if kind in GENERATED else obj)
        out[ctx] = collections.Counter(names)
    return out


def secrets(lab, ctx):
    items = json.loads(run("kubectl", "--context", ctx, "-n", "istio-system", "get", "secrets", "-o", "json",
                           env=lab.env).stdout)["items"]
    return {s["metadata"]["name"]: s for s in items}


def failures(fault_log):
    return [r for r in (json.loads(line) for line in fault_log.read_text().splitlines()) if r.get("failed")]


class Flow:
    def __init__(self, lab, tmp):
        self.lab, self.tmp = lab, tmp
        self.contexts = lab.contexts()
        self.fault_ctx = self.contexts[FAULT_INDEX - 1]
        self.reachable = [c for c in self.contexts if c != self.fault_ctx]
        self.inv = tmp / "inventory.yml"
        self.ca_dir = tmp / "ca"
        self.inventory = lab.inventory(MODEL, self.inv, self.ca_dir)
        self.runs = {}
        self.done = []
        self.unsettled = []

    def playbook(self, name, playbook, *extra, env=None):
        log = self.tmp / f"ansible-{len(self.runs)}.log"
        mark = self.lab.mark()
        started = time.monotonic()
        proc = run("ansible-playbook", "-i", str(self.inv), str(REPO / "playbooks" / playbook), *extra,
                   env=dict(env or self.lab.env, ANSIBLE_LOG_PATH=str(log)), check=False)
        self.runs[name] = dict(proc=proc, log=log, writes=self.lab.writes(mark), seconds=round(time.monotonic() - started, 1))
        print(f"\n{name}: {self.runs[name]['seconds']}s rc={proc.returncode} writes={self.runs[name]['writes']}")
        return self.runs[name]

    def apiserver_up(self):
        if not all(p["alive"] for p in json.loads(self.lab.meshlab("status", "--json"))["processes"]
                   if p["name"] == f"{self.fault_ctx}/kube-apiserver"):
            self.lab.meshlab("start-apiserver", "--cluster", str(FAULT_INDEX))

    def unreachable_before_the_run(self):
        self.lab.meshlab("stop-apiserver", "--cluster", str(FAULT_INDEX))
        try:
            self.playbook("preflight", "multi-primary.yml", *VERBOSE)
        finally:
            self.apiserver_up()

    def killed_in_the_middle(self):
        fault_log = self.tmp / "fault.jsonl"
        env = dict(self.lab.env, ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests/integration/callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="meshlab_fault", MESHLAB_FAULT_TASK=REMOTE_SECRET_TASK,
                   MESHLAB_FAULT_CLUSTER=str(FAULT_INDEX), MESHLAB_FAULT_LOG=str(fault_log))
        try:
            self.playbook("fault", "multi-primary.yml", *VERBOSE, env=env)
            # Read while cluster3 is still down: what the failed run left.
            self.after_fault = {c: secrets(self.lab, c) for c in self.reachable}
        finally:
            self.apiserver_up()
        self.fault_log = fault_log
        self.after_fault[self.fault_ctx] = secrets(self.lab, self.fault_ctx)

    def own_time(self, ctx):
        """The OWN_TIME objects and istiod's leader-election ConfigMaps in ctx, named as cluster_snapshot names them."""
        items = json.loads(run("kubectl", "--context", ctx, "get", "configmaps,serviceaccounts", "-A", "-o", "json",
                               env=self.lab.env).stdout)["items"]
        return {f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}" for o in items
                if (o["kind"], o["metadata"]["name"]) in OWN_TIME or LEADER in (o["metadata"].get("annotations") or {})}

    def settle(self, when, contexts, reference):
        """Wait until every one of contexts holds every object of reference() (a set of own_time names). What is
        still missing when the time is up is kept for test_no_orphans, whose comparison of the snapshots it spoils."""
        def missing():
            want = reference()
            short = {ctx: want - self.own_time(ctx) for ctx in contexts}
            return {ctx: sorted(objs) for ctx, objs in short.items() if objs}
        try:
            wait_until(missing, SETTLE_SECONDS, f"{when}: istiod and kube-controller-manager to write what they write "
                       "into every namespace on their own time (missing, per cluster)", done=lambda m: not m, interval=2)
        except NotReached as e:
            self.unsettled.append(str(e))

    def recover(self):
        self.playbook("recovery", "multi-primary.yml", "-vvvv")
        if self.runs["recovery"]["proc"].returncode == 0:
            # cluster3's istiod and kube-controller-manager reconnect to its API server with client-go's backoff: before
            # the snapshot, wait until cluster3 holds everything of theirs that cluster1 holds, in every namespace.
            self.settle("after the recovery", [self.fault_ctx], lambda: self.own_time(self.reachable[0]))
            self.in_every_cluster = set.intersection(*(self.own_time(ctx) for ctx in self.contexts))
        self.recovered = cluster_snapshot.take(self.contexts, env=self.lab.env)
        if self.runs["recovery"]["proc"].returncode == 0:
            self.needles = collect_secrets(self.lab, self.inventory, self.ca_dir)

    def clean(self):
        assert self.runs["recovery"]["proc"].returncode == 0, "the recovery failed: nothing to compare"
        self.playbook("uninstall", "uninstall.yml", "-e", "istio_purge_crds=true")
        self.playbook("clean converge", "multi-primary.yml")
        if self.runs["clean converge"]["proc"].returncode == 0:
            # The new istiods (and the namespaces made again) get theirs some time after the run: what every
            # recovered cluster held.
            self.settle("after the clean converge", self.contexts, lambda: self.in_every_cluster)
        self.clean_set = cluster_snapshot.take(self.contexts, env=self.lab.env)

    STEPS = ("unreachable_before_the_run", "killed_in_the_middle", "recover", "clean")

    def upto(self, step):
        """Run the steps up to this one, each once, in order: each test waits only for what it reads."""
        for name in self.STEPS[:self.STEPS.index(step) + 1]:
            if name not in self.done:
                self.done.append(name)
                getattr(self, name)()
        return self


@pytest.fixture(scope="module")
def flow(lab3, tmp_path_factory):
    return Flow(lab3, tmp_path_factory.mktemp("faults"))


def out(r):
    return r["proc"].stdout + r["proc"].stderr


def test_a_stopped_api_server_is_found_by_preflight_before_any_write(flow):
    flow.upto("unreachable_before_the_run")
    r = flow.runs["preflight"]
    assert r["proc"].returncode != 0, out(r)[-3000:]
    assert f"host {FAULT_HOST}: kube_context: cluster unreachable through context '{flow.fault_ctx}'" in out(r), out(r)[-4000:]
    assert "nothing was changed" in out(r)
    # Only cluster3 is named: the reachable clusters passed their preflight.
    assert "host cluster1:" not in out(r) and "host cluster2:" not in out(r)
    assert r["writes"] == {c: 0 for c in flow.contexts}, r["writes"]
    # The play stopped in preflight: not one task of a later phase started.
    assert "TASK [meshops.istio.network" not in r["proc"].stdout


def test_the_fault_hit_the_remote_secret_task(flow):
    flow.upto("killed_in_the_middle")
    fired = [r for r in (json.loads(line) for line in flow.fault_log.read_text().splitlines()) if "cluster" in r]
    assert len(fired) == 1 and fired[0]["rc"] == 0, fired
    assert REMOTE_SECRET_TASK in fired[0]["task"] and "SIGKILL" in fired[0]["output"]
    # Everything before it ran on all three clusters: the kill came in the middle of the converge.
    stdout = flow.runs["fault"]["proc"].stdout
    assert "TASK [meshops.istio.control_plane" in stdout
    assert flow.runs["fault"]["writes"][flow.fault_ctx] > 0, "cluster3 was written to before its API server died"


def test_the_failed_run_names_the_lost_cluster_on_every_host(flow):
    flow.upto("killed_in_the_middle")
    r = flow.runs["fault"]
    assert r["proc"].returncode != 0
    failed = failures(flow.fault_log)
    assert sorted(f["host"] for f in failed) == ["cluster1", "cluster2", "cluster3"], failed
    for f in failed:
        assert REMOTE_SECRET_TASK in f["task"], f
        assert FAULT_HOST in f["msg"] and "unreachable" in f["msg"], f
    # The operator sees the same: each host failed, and cluster3's API server is named as the cause.
    flat = " ".join(r["proc"].stdout.split())
    for host in ("cluster1", "cluster2", "cluster3"):
        assert f"fatal: [{host}]" in flat
    assert f"{FAULT_HOST}: API server" in flat and "unreachable" in flat
    # No later phase (verify) started on any host.
    assert "TASK [meshops.istio.verify" not in r["proc"].stdout
    assert re.search(r"cluster3\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=1", r["proc"].stdout)


def _kubeconfig(secret, source):
    """The remote secret's kubeconfig, checked complete: one cluster with server and a PEM CA, one user with a token."""
    data = secret["data"]
    assert list(data) == [source], f"{secret['metadata']['name']}: keys {list(data)}"
    kc = yaml.safe_load(base64.b64decode(data[source]))
    (cluster,) = kc["clusters"]
    (user,) = kc["users"]
    assert cluster["name"] == source and cluster["cluster"]["server"].startswith("https://")
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert user["user"]["token"].count(".") == 2
    return kc


def test_no_half_written_secret_and_only_what_was_reported(flow):
    flow.upto("killed_in_the_middle")
    servers = {h: hv["kube_context"] for h, hv in flow.inventory["all"]["children"]["istio_primary"]["hosts"].items()}
    contexts = {c["context"]: c["server"] for c in json.loads(flow.lab.meshlab("status", "--json"))["clusters"]}
    host_of = {ctx: h for h, ctx in servers.items()}
    reported = {(f["host"], c["name"]) for f in failures(flow.fault_log) for c in f.get("consumers", [])}
    held = set()
    for ctx, objs in flow.after_fault.items():
        for name, s in objs.items():
            if not name.startswith(PREFIX):
                continue
            source = name[len(PREFIX):]
            kc = _kubeconfig(s, source)
            # The actual reader token of the source cluster and its API server: complete and correct.
            token_secret = flow.after_fault[servers[source]]["istio-reader-service-account-istio-remote-secret-token"]
            assert kc["users"][0]["user"]["token"] == base64.b64decode(token_secret["data"]["token"]).decode()
            assert kc["clusters"][0]["cluster"]["server"] == contexts[servers[source]]
            held.add((source, host_of[ctx]))
    # Nothing from cluster3 (its token could not be read) and nothing into it (it was down).
    assert not [h for h in held if FAULT_HOST in h], held
    assert not [n for n in flow.after_fault[flow.fault_ctx] if n.startswith(PREFIX)]
    # What exists is exactly what the failed tasks reported as written before the failure.
    assert held == reported, (held, reported)
    # The other Secrets the run wrote are whole too: cacerts with all four files in every cluster.
    for ctx, objs in flow.after_fault.items():
        assert set(objs["cacerts"]["data"]) >= {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}, ctx


def test_a_rerun_after_the_api_server_is_back_converges_and_verifies(flow):
    flow.upto("recover")
    r = flow.runs["recovery"]
    assert r["proc"].returncode == 0, out(r)[-6000:]
    assert "TASK [meshops.istio.verify" in r["proc"].stdout
    assert re.search(r"cluster3\s+: ok=\d+\s+changed=[1-9]\d*\s+unreachable=0\s+failed=0", r["proc"].stdout)
    # Every cluster now holds a remote secret for each other one (collect_secrets checks that and reads them).
    assert flow.needles


def test_no_orphans_the_recovered_mesh_equals_a_clean_converge(flow):
    flow.upto("clean")
    assert flow.runs["uninstall"]["proc"].returncode == 0, out(flow.runs["uninstall"])[-3000:]
    assert flow.runs["clean converge"]["proc"].returncode == 0, out(flow.runs["clean converge"])[-3000:]
    recovered, clean = normalized(flow.recovered), normalized(flow.clean_set)
    assert sum(len(v) for v in clean.values()) > 100, "the snapshot lists the objects of a real mesh"
    for ctx in flow.contexts:
        extra = recovered[ctx] - clean[ctx]
        missing = clean[ctx] - recovered[ctx]
        assert not extra and not missing, (f"{ctx}: left by the fault: {sorted(extra)}; missing: {sorted(missing)}"
                                           + "".join("\n" + u for u in flow.unsettled))


@pytest.mark.parametrize("name", ["preflight", "fault", "recovery"])
def test_no_token_or_key_in_any_output_even_when_failing(flow, name):
    flow.upto("recover")
    assert flow.runs["recovery"]["proc"].returncode == 0, "the recovery failed: no secrets to search for"
    r = flow.runs[name]
    text = {"output": out(r), "log": r["log"].read_text()}
    assert "verbosity: 4" in text["output"] and "AnsiballZ_" in text["log"], "the run was at -vvvv and logged"
    if name == "fault":
        # The failing tasks did print their module arguments and results (what could leak did get printed).
        assert "module_args" in text["output"] and "remote_secret" in text["log"]
    for what, body in text.items():
        leaks = find_leaks(body, flow.needles)
        assert not leaks, f"{name} {what} leaks: " + "; ".join(
            f"{secret} as {form}" + (f" (a fragment: {frag[:6]}...)" if frag else " (whole)") for secret, form, frag in leaks)
