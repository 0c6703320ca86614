"""A canary upgrade between real releases, 1.29.6 -> 1.30.3, on a lab whose proxies are real (multi-primary, two
networks), while a request loop runs from every cluster the whole time:

converge 1.29.6 as revision 1-29-6 with the tags prod-stable and prod-canary on it; helloworld v1/v2 and curl in
namespace `hello` (istio.io/rev=prod-stable), curl in `hello-canary` (istio.io/rev=prod-canary); then
playbooks/upgrade.yml stage by stage: install (1-30-3 beside 1-29-6), canary with restarts (the canary curls on
1.30.3), rollback with restarts (every proxy back on 1.29.6, 1-30-3 gone), install again, canary, promote in check
mode (a plan, no write), promote with restarts (every proxy on 1.30.3, served by the new istiods), remove (only 1-30-3
left). The inventory then says what the upgrade printed, and the model's playbook writes nothing; uninstall leaves
both clusters as before the install."""
import contextlib
import json
import re
import subprocess
import threading
import time

import pytest
import yaml

import cluster_snapshot
from conftest import _lab, flow_steps, step_seconds

OLD, NEW = "1.29.6", "1.30.3"
OLD_REV, NEW_REV = "1-29-6", "1-30-3"
TAGS = {"prod-stable": OLD_REV, "prod-canary": OLD_REV}
APP_NS, CANARY_NS = "hello", "hello-canary"
# Ten playbook runs and the workloads' restarts on one real-pod lab.
pytestmark = pytest.mark.timeout(3000)


class RequestLoop:
    """curl helloworld from one client pod, batch after batch (kubectl exec), until stopped: every answer (with its
    seconds) and every failed request, with its time. A request fails on any error, an answer other than helloworld's,
    or no answer within 10 s. A batch cut off by its pod's restart counts the requests it printed; the one in flight
    is not known and not counted."""

    # $r unquoted: the answer and curl's time on one line (helloworld's answer ends with a newline).
    BATCH = ("for i in $(seq 1 20); do if r=$(curl -sS --max-time 10 -w ' in %%{time_total}' "
             "http://helloworld.%s:5000/hello 2>&1); then echo OK $r; else echo FAIL $r; fi; sleep 0.1; done" % APP_NS)

    def __init__(self, lab, ctx, namespace):
        self.lab, self.ctx, self.namespace = lab, ctx, namespace
        self.results = []   # (monotonic time, 'v1' | 'v2' | 'FAIL <why>')
        self.seconds = []   # (monotonic time, seconds the answer took)
        self.exec_errors = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set():
            proc = subprocess.run(["kubectl", "--context", self.ctx, "exec", "-n", self.namespace, "deploy/curl", "-c",
                                   "curl", "--", "sh", "-c", self.BATCH], env=self.lab.env, capture_output=True,
                                  text=True, timeout=120, check=False)
            for line in proc.stdout.splitlines():
                m = re.match(r"OK Hello version: (v\d), instance: \S+ in ([\d.]+)$", line)
                self.results.append((time.monotonic(), m.group(1) if m else "FAIL " + line[:200]))
                if m:
                    self.seconds.append((time.monotonic(), float(m.group(2))))
            if proc.returncode != 0:
                self.exec_errors += 1
                time.sleep(1)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=150)


def count(loops, since, until):
    """{client: {'sent', 'failed', 'v1', 'v2'}} of the requests answered or failed between the two times."""
    out = {}
    for name, loop in loops.items():
        rs = [(t, r) for t, r in loop.results if since <= t < until]
        answers = [r for t, r in rs]
        slowest = max([s for t, s in loop.seconds if since <= t < until] or [0.0])
        out[name] = dict(sent=len(rs), failed=sum(1 for r in answers if r.startswith("FAIL")), v1=answers.count("v1"),
                         v2=answers.count("v2"), slowest=slowest, failures=[(t - since, r) for t, r in rs if r.startswith("FAIL")])
    return out


def kubectl(lab, ctx, *args, stdin=None):
    proc = subprocess.run(["kubectl", "--context", ctx, *args], env=lab.env, input=stdin, capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def deploy(lab):
    samples = lab.env["MESHLAB_ISTIO_SAMPLES"]
    for i, ctx in enumerate(lab.contexts()):
        for ns, tag in ((APP_NS, "prod-stable"), (CANARY_NS, "prod-canary")):
            kubectl(lab, ctx, "create", "namespace", ns)
            kubectl(lab, ctx, "label", "namespace", ns, f"istio.io/rev={tag}")
            kubectl(lab, ctx, "apply", "-n", ns, "-f", f"{samples}/curl/curl.yaml")
        hello = f"{samples}/helloworld/helloworld.yaml"
        kubectl(lab, ctx, "apply", "-n", APP_NS, "-f", hello, "-l", "service=helloworld")
        kubectl(lab, ctx, "apply", "-n", APP_NS, "-f", hello, "-l", f"version=v{i + 1}")
    for ctx in lab.contexts():
        for ns in (APP_NS, CANARY_NS):
            kubectl(lab, ctx, "rollout", "status", "-n", ns, "deployment", "--timeout=120s")


def proxies(lab):
    """{cluster: {'<ns>/<app>': (revision annotation, proxy image tag)}} of the workloads' running pods."""
    out = {}
    for ctx in lab.contexts():
        found = {}
        for ns in (APP_NS, CANARY_NS):
            for p in json.loads(kubectl(lab, ctx, "get", "pods", "-n", ns, "-o", "json"))["items"]:
                if p["metadata"].get("deletionTimestamp"):
                    continue
                image = [c["image"] for c in p["spec"]["containers"] if c["name"] == "istio-proxy"][0]
                found[f"{ns}/{p['metadata']['labels']['app']}"] = (p["metadata"]["annotations"]["istio.io/rev"],
                                                                   image.rsplit(":", 1)[1])
        out[ctx] = found
    return out


def proxy_status(lab, istioctl, revision):
    """`istioctl proxy-status --revision <rev>` of every cluster: {cluster: {pod.namespace: (istiod, version)}}."""
    out = {}
    for ctx in lab.contexts():
        proc = subprocess.run([istioctl, "--context", ctx, "proxy-status", "--revision", revision], env=lab.env,
                              capture_output=True, text=True, timeout=60, check=False)
        rows = [line.split() for line in proc.stdout.splitlines()[1:] if line.strip()]
        out[ctx] = dict((r[0], (r[2], r[3])) for r in rows if len(r) >= 4)
    return out


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("upgrade")
    with contextlib.contextmanager(_lab)(tmp_path_factory, 2, "real") as lab:
        inv = d / "inventory.yml"
        lab.meshlab("inventory", "--model", "multi-primary-multi-network", "--istio", OLD, "--ca-dir", str(d / "ca"),
                    "-o", str(inv))
        doc = yaml.safe_load(inv.read_text())
        doc["all"]["vars"].update(istio_revision=OLD_REV, istio_revision_tags=dict(TAGS))
        inv.write_text(yaml.safe_dump(doc))
        new_vars = yaml.safe_load(lab.meshlab("inventory", "--model", "multi-primary-multi-network", "--istio", NEW,
                                              "--ca-dir", str(d / "ca")))["all"]["vars"]
        upgrade = ("-e", f"istio_upgrade_to={NEW}", "-e", f"istio_upgrade_charts={new_vars['istio_charts']}")
        restart = ("-e", "istio_upgrade_restart=true")
        contexts = lab.contexts()
        out = {"before": cluster_snapshot.take(contexts, env=lab.env), "contexts": contexts, "stages": {}}
        playbook = flow_steps(lab, inv, out)
        playbook("converge", "multi-primary.yml")
        deploy(lab)
        loops = dict((f"{ctx}/{ns}", RequestLoop(lab, ctx, ns).start()) for ctx in contexts for ns in (APP_NS, CANARY_NS))
        try:
            time.sleep(5)

            def stage(name, *extra, check=None):
                started = time.monotonic()
                playbook(name, "upgrade.yml", *upgrade, *extra)
                if check:
                    out[name + "_state"] = check()
                out["stages"][name] = count(loops, started, time.monotonic())

            stage("install", "-e", "istio_upgrade_stage=install")
            stage("canary", "-e", "istio_upgrade_stage=canary", *restart, check=lambda: proxies(lab))
            stage("rollback", "-e", "istio_upgrade_stage=rollback", *restart, check=lambda: proxies(lab))
            out["rollback_info"] = dict((c, kubectl(lab, c, "get", "deployments", "-n", "istio-system", "-o", "name"))
                                        for c in contexts)
            stage("install_again", "-e", "istio_upgrade_stage=install")
            stage("canary_again", "-e", "istio_upgrade_stage=canary", *restart)
            stage("promote_check", "-e", "istio_upgrade_stage=promote", *restart, "--check", "--diff")
            stage("promote", "-e", "istio_upgrade_stage=promote", *restart, check=lambda: proxies(lab))
            out["proxy_status"] = proxy_status(lab, new_vars["istio_istioctl_binary"], NEW_REV)
            stage("remove", "-e", "istio_upgrade_stage=remove")
            stage("remove_again", "-e", "istio_upgrade_stage=remove")
            time.sleep(5)
        finally:
            for loop in loops.values():
                loop.stop()
        out["loops"] = dict((name, dict(results=list(loop.results), exec_errors=loop.exec_errors))
                            for name, loop in loops.items())
        out["after_upgrade"] = dict((c, kubectl(lab, c, "get", "deployments,mutatingwebhookconfigurations", "-A", "-o", "name"))
                                    for c in contexts)
        # What the upgrade said the inventory must say now.
        doc["all"]["vars"].update(istio_version=NEW, istio_revision=NEW_REV, istio_charts=new_vars["istio_charts"],
                                  istio_istioctl_binary=new_vars["istio_istioctl_binary"],
                                  istio_revision_tags={"prod-stable": NEW_REV, "prod-canary": NEW_REV})
        inv.write_text(yaml.safe_dump(doc))
        playbook("rerun", "multi-primary.yml")
        for ctx in contexts:
            kubectl(lab, ctx, "delete", "namespace", APP_NS, CANARY_NS, "--wait=true")
        playbook("uninstall", "uninstall.yml", "-e", "istio_purge_crds=true")
        out["after"] = cluster_snapshot.take(contexts, env=lab.env)
    print("\nupgrade flow: " + step_seconds(out))
    for name, per_client in out["stages"].items():
        figures = ["%s sent %d failed %d (v1 %d, v2 %d, slowest %.2fs)" % (c, s["sent"], s["failed"], s["v1"], s["v2"], s["slowest"])
                   for c, s in sorted(per_client.items())]
        print("  %-14s %s" % (name, "; ".join(figures)))
        for c, s in sorted(per_client.items()):
            for at, why in s["failures"]:
                print("      %s +%.1fs %s" % (c, at, why))
    return out


def test_no_request_lost_in_any_stage(flow):
    for stage, per_client in flow["stages"].items():
        for client, s in per_client.items():
            assert s["sent"] > 0, (stage, client, "the loop sent nothing: the figures would prove nothing")
            assert s["failed"] == 0, (stage, client, s, [r for t, r in flow["loops"][client]["results"] if r.startswith("FAIL")][:5])
    # Every client reached both versions across the upgrade (v1 in one cluster, v2 in the other: across networks).
    for client, loop in flow["loops"].items():
        answers = set(r for t, r in loop["results"])
        assert {"v1", "v2"} <= answers, (client, answers)


def test_canary_moves_only_the_canary_namespaces(flow):
    for ctx, found in flow["canary_state"].items():
        assert found[f"{CANARY_NS}/curl"] == (NEW_REV, NEW), found
        assert found[f"{APP_NS}/curl"] == (OLD_REV, OLD) and found[f"{APP_NS}/helloworld"] == (OLD_REV, OLD), found


def test_rollback_brings_every_proxy_back_and_removes_the_new_revision(flow):
    for ctx, found in flow["rollback_state"].items():
        assert set(found.values()) == {(OLD_REV, OLD)}, found
    for ctx, names in flow["rollback_info"].items():
        assert "deployment.apps/istiod-1-29-6" in names.split() and "istiod-1-30-3" not in names, names


def test_promote_in_check_mode_is_a_plan(flow):
    step = flow["promote_check"]
    assert set(step["writes"].values()) == {0}, step["writes"]
    assert "patch MutatingWebhookConfiguration istio-revision-tag-prod-stable" in step["proc"].stdout
    assert "restart Deployment hello/helloworld" in step["proc"].stdout


def test_promote_puts_every_proxy_on_the_new_istiods(flow):
    for ctx, found in flow["promote_state"].items():
        assert set(found.values()) == {(NEW_REV, NEW)}, found
    for ctx, rows in flow["proxy_status"].items():
        workloads = dict((pod, v) for pod, v in rows.items() if pod.endswith("." + APP_NS) or pod.endswith("." + CANARY_NS))
        assert len(workloads) == 3, rows  # curl and helloworld in hello, curl in hello-canary
        assert all(istiod.startswith("istiod-" + NEW_REV) and version == NEW for istiod, version in workloads.values()), rows


def test_remove_leaves_only_the_new_release_and_again_does_nothing(flow):
    for ctx, names in flow["after_upgrade"].items():
        names = names.split()
        assert "deployment.apps/istiod-1-30-3" in names and not [n for n in names if "1-29-6" in n], names
    assert set(flow["remove_again"]["writes"].values()) == {0}, flow["remove_again"]["writes"]
    assert "revision 1-29-6 is already gone: nothing to do" in flow["remove_again"]["proc"].stdout


def test_the_inventory_the_upgrade_printed_is_the_mesh(flow):
    assert "upgrade done: set istio_version: 1.30.3, istio_revision: 1-30-3" in flow["remove"]["proc"].stdout
    assert set(flow["rerun"]["writes"].values()) == {0}, flow["rerun"]["writes"]
    assert flow["rerun"]["changed"] == [], flow["rerun"]["changed"]


def test_uninstall_leaves_the_clusters_as_before(flow):
    assert cluster_snapshot.compare(flow["before"], flow["after"]) == {}
