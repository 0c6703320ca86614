"""Istio's "Verify the installation", run by hand as its docs do, on a lab whose pods are real: the release's
helloworld v1 in the first cluster, v2 in the second, its curl sample in both, and curl from each cluster to
helloworld.sample:5000 until both versions answer."""
import collections
import json
import re
import subprocess

import yaml

import cluster_snapshot
from conftest import flow_steps, wait_until

SAMPLE_NS = "sample"
HELLO = re.compile(r"Hello version: (v\d), instance: (\S+)")


def kubectl(lab, ctx, *args, check=True):
    proc = subprocess.run(["kubectl", "--context", ctx, *args], env=lab.env, capture_output=True, text=True,
                          timeout=180, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl --context {ctx} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_ok(lab, argv):
    proc = subprocess.run(argv, env=lab.env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def deploy(lab, samples):
    """As the docs: the sample namespace with injection, the helloworld Service everywhere, vN in cluster N, curl."""
    contexts = lab.contexts()
    for i, ctx in enumerate(contexts):
        kubectl(lab, ctx, "create", "namespace", SAMPLE_NS)
        kubectl(lab, ctx, "label", "namespace", SAMPLE_NS, "istio-injection=enabled")
        hello = f"{samples}/helloworld/helloworld.yaml"
        kubectl(lab, ctx, "apply", "-n", SAMPLE_NS, "-f", hello, "-l", "service=helloworld")
        kubectl(lab, ctx, "apply", "-n", SAMPLE_NS, "-f", hello, "-l", f"version=v{i % 2 + 1}")
        kubectl(lab, ctx, "apply", "-n", SAMPLE_NS, "-f", f"{samples}/curl/curl.yaml")
    for ctx in contexts:
        for app in ("helloworld", "curl"):
            kubectl(lab, ctx, "wait", "-n", SAMPLE_NS, "--for=condition=Ready", "pod", "-l", f"app={app}",
                    "--timeout=120s")


def curl(lab, ctx, n=20):
    """n requests from the curl pod of ctx; returns {version: count} and the raw output."""
    out = kubectl(lab, ctx, "exec", "-n", SAMPLE_NS, "deploy/curl", "-c", "curl", "--", "sh", "-c",
                  f"for i in $(seq 1 {n}); do curl -sS --max-time 5 helloworld.{SAMPLE_NS}:5000/hello; done",
                  check=False)
    return collections.Counter(m.group(1) for m in HELLO.finditer(out.stdout)), out.stdout + out.stderr


def answered_by_both(lab, ctx):
    """Waits until a round of requests from ctx is answered by v1 and v2 (endpoints of the other cluster reach
    this cluster's proxies a few seconds after the pods are Ready); returns the last round's counts."""
    return wait_until(lambda: curl(lab, ctx)[0], 90, f"curl from {ctx} answered by helloworld v1 and v2",
                      done=lambda c: c.get("v1", 0) > 0 and c.get("v2", 0) > 0, interval=2)


def server_saw_client_identity(lab, ctx):
    """The helloworld app logs the X-Forwarded-Client-Cert its sidecar passes on: the client's SPIFFE ID."""
    logs = kubectl(lab, ctx, "logs", "-n", SAMPLE_NS, "-l", "app=helloworld", "-c", "helloworld", "--tail=-1").stdout
    return sorted(set(re.findall(r"URI=(spiffe://[^;,\s]+)", logs)))


def proxy_versions(lab, ctx, namespace=SAMPLE_NS):
    """pilot-agent version of every sidecar in the namespace, from inside the pods."""
    pods = json.loads(kubectl(lab, ctx, "get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    found = {}
    for p in pods:
        out = kubectl(lab, ctx, "exec", "-n", namespace, p["metadata"]["name"], "-c", "istio-proxy", "--",
                      "pilot-agent", "version", "-s").stdout.split()[-1]
        found[p["metadata"]["name"]] = out
    return found


def gateway_connections(lab, ctx, service=f"helloworld.{SAMPLE_NS}.svc.cluster.local"):
    """Connections the east-west gateway of ctx has opened to the service's endpoints for other networks: its
    sni-dnat clusters (`outbound_.<port>_._.<service>`), from Envoy's /clusters admin page."""
    pod = json.loads(kubectl(lab, ctx, "get", "pods", "-n", "istio-system", "-l", "istio=eastwestgateway", "-o",
                             "json").stdout)["items"][0]["metadata"]["name"]
    out = kubectl(lab, ctx, "exec", "-n", "istio-system", pod, "-c", "istio-proxy", "--", "curl", "-s",
                  "localhost:15000/clusters").stdout
    total = 0
    for line in out.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0].startswith("outbound_.") and parts[0].endswith(f"_._.{service}") \
                and parts[2] == "cx_total":
            total += int(parts[3])
    return total


# ---- the collection's own check (the verify role's traffic step) ----------------------------------------------
ANSWERED = re.compile(r"'?(\S+): (\d+) requests answered by ([^()']*?)(?:; never by ([^()']*))? \(in ([\d.]+)s\)")


def verify_answers(stdout):
    """{cluster: {version: count}} from the verify role's "Show what each cluster got" lines."""
    out = {}
    for m in ANSWERED.finditer(stdout):
        counts = {}
        for part in m.group(3).split(", "):
            if " x" in part:
                version, n = part.split(" x")
                counts[version] = int(n)
        out[m.group(1)] = counts
    return out


def verify_seconds(stdout):
    """{cluster: seconds until both versions answered} from the same lines."""
    return dict((m.group(1), float(m.group(5))) for m in ANSWERED.finditer(stdout))


def flow(lab, model, release, tmp, playbook, mesh_vars=None):
    """Converge from an empty lab (verify with traffic), re-run, verify.yml alone, uninstall with the CRDs purged:
    each step's figures, and the object sets before the install and after the uninstall. mesh_vars: inventory
    variables set for the whole mesh (istio_install_method, say)."""
    inv = tmp / "inventory.yml"
    lab.meshlab("inventory", "--model", model, "--istio", release, "--ca-dir", str(tmp / "ca"), "-o", str(inv))
    if mesh_vars:
        doc = yaml.safe_load(inv.read_text())
        doc["all"]["vars"].update(mesh_vars)
        inv.write_text(yaml.safe_dump(doc))
    out = {"before": cluster_snapshot.take(lab.contexts(), env=lab.env)}
    step = flow_steps(lab, inv, out)
    step("converge", playbook)
    step("rerun", playbook)
    step("verify", "verify.yml")
    step("uninstall", "uninstall.yml", "-e", "istio_purge_crds=true")
    out["after"] = cluster_snapshot.take(lab.contexts(), env=lab.env)
    return out


def figures(model, release, out):
    """One line for the closing note: converge time, re-run writes, requests answered per version."""
    answers = verify_answers(out["converge"]["proc"].stdout)
    waited = verify_seconds(out["converge"]["proc"].stdout)
    per_cluster = "; ".join("%s %s (%ss)" % (c, ", ".join("%s x%d" % kv for kv in sorted(v.items())), waited.get(c))
                            for c, v in sorted(answers.items()))
    return "%s %s: converge %ss, re-run %ss with %d writes, verify %ss, uninstall %ss; answers %s" % (
        model, release, out["converge"]["seconds"], out["rerun"]["seconds"], sum(out["rerun"]["writes"].values()),
        out["verify"]["seconds"], out["uninstall"]["seconds"], per_cluster)
