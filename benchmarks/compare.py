"""The collection against Istio's documented procedure, and at scale (prints figures; not a test).

On fresh labs, one after the other:
  1. benchmarks/docs_baseline.sh: the docs' multi-primary multi-network procedure by hand, 2 clusters;
  2. the collection's from-empty converge of the same mesh (multi-primary.yml), then its no-op re-run;
  3. the collection's from-empty converge of 8 clusters, full mesh (8 x 7 = 56 remote secrets).
For each: wall time, admin write requests (the lab's audit logs) and the distinct objects the admin created, then
a table against the targets, and where the collection's time, CPU and writes go (slowest tasks, CPU seconds of the
command's process tree against the lab's processes, writes by verb/kind).

    python benchmarks/compare.py [--big 8] [--skip-big] [--skip-baseline]
"""
import argparse
import collections
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "multi-primary-multi-network"
ADMIN = "lab-admin"


def sh(*cmd, env, check=True):
    proc = subprocess.run(list(cmd), env=env, cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc


class Lab:
    def __init__(self, tmp, clusters):
        self.home = Path(tmp) / "lab"
        self.env = dict(os.environ, MESHLAB_HOME=str(self.home), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        for line in sh("meshlab", "env", "--istio", "master", env=self.env).stdout.splitlines():
            key, dummy, value = line[len("export "):].partition("=")
            self.env[key] = value.replace("$PATH", os.environ["PATH"])
        sh("meshlab", "up", "--clusters", str(clusters), "--dataplane", "simulated", env=self.env)
        self.inventory = Path(tmp) / "inventory.yml"
        sh("meshlab", "inventory", "--model", MODEL, "--ca-dir", f"{tmp}/ca", "-o", str(self.inventory), env=self.env)

    def down(self):
        sh("meshlab", "down", env=self.env, check=False)

    def mark(self):
        return sh("meshlab", "mark", env=self.env).stdout.strip()

    def admin_events(self, since):
        """Write requests by the admin identity since the MARK, from every cluster's audit log."""
        since_dt = datetime.datetime.strptime(since.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
        events = []
        for log in sorted(self.home.glob("*/audit.log")):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("user", {}).get("username") != ADMIN or ev.get("verb") not in (
                        "create", "update", "patch", "delete", "deletecollection"):
                    continue
                ts = datetime.datetime.strptime(ev["requestReceivedTimestamp"].replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
                if ts >= since_dt:
                    events.append(dict(ev, cluster=log.parent.name))
        return events

    def lab_cpu(self):
        """CPU seconds used so far by each process the lab started (API servers, etcd, istiods, ...)."""
        out = {}
        for p in json.loads(sh("meshlab", "status", "--json", env=self.env).stdout)["processes"]:
            try:
                fields = Path(f"/proc/{p['pid']}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[p["pid"]] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def run(self, label, cmd):
        mark = self.mark()
        lab_before = self.lab_cpu()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"{label} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        # The command's whole process tree (ansible-playbook, its workers and modules, helm; or the shell script's
        # tools), and the lab's processes over the same time: on one machine they share the cores.
        cpu = dict(tools=after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
                   lab=sum(v - lab_before.get(pid, 0.0) for pid, v in self.lab_cpu().items()))
        return Run(label, seconds, self.admin_events(mark), proc.stdout, cpu)

    def playbook(self, label):
        env_cb = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "12",
                  "PROFILE_TASKS_SORT_ORDER": "descending"}
        self.env.update(env_cb)
        try:
            return self.run(label, ["ansible-playbook", "-i", str(self.inventory), str(REPO / "playbooks" / "multi-primary.yml")])
        finally:
            for key in env_cb:
                self.env.pop(key)


class Run:
    def __init__(self, label, seconds, events, stdout, cpu):
        self.label, self.seconds, self.events, self.stdout, self.cpu = label, seconds, events, stdout, cpu

    @property
    def writes(self):
        return len(self.events)

    def objects(self):
        """Distinct objects the admin created (successful create requests; subresources such as a TokenRequest or
        a Service's status are not objects)."""
        seen = set()
        for ev in self.events:
            ref = ev.get("objectRef") or {}
            code = (ev.get("responseStatus") or {}).get("code", 0)
            if ev["verb"] == "create" and 200 <= code < 300 and not ref.get("subresource"):
                seen.add((ev["cluster"], ref.get("apiGroup", ""), ref.get("resource"), ref.get("namespace", ""), ref.get("name")))
        return seen

    def remote_secrets(self):
        return sum(1 for c, g, r, ns, name in self.objects() if r == "secrets" and (name or "").startswith("istio-remote-secret-"))

    def breakdown(self):
        """Writes grouped by verb and resource (subresource), most first."""
        c = collections.Counter()
        for ev in self.events:
            ref = ev.get("objectRef") or {}
            c["%s %s%s" % (ev["verb"], ref.get("resource"), "/" + ref["subresource"] if ref.get("subresource") else "")] += 1
        return c.most_common()

    def slowest_tasks(self, n=8):
        # profile_tasks prints "<task> ---- 12.34s" lines at the end.
        rows = re.findall(r"^(.*?) -+ (\d+\.\d+)s$", self.stdout, re.M)
        return [(name.strip(), float(s)) for name, s in rows][:n]


def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", type=int, default=8, help="clusters of the scale run (default 8)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    results = {}

    if not args.skip_baseline:
        with tempfile.TemporaryDirectory() as tmp:
            lab = Lab(tmp, 2)
            try:
                results["baseline"] = lab.run("docs baseline (2 clusters)", ["bash", str(REPO / "benchmarks" / "docs_baseline.sh")])
            finally:
                lab.down()
        print(f"docs baseline: {results['baseline'].seconds:.1f} s, {results['baseline'].writes} admin writes", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(tmp, 2)
        try:
            results["converge"] = lab.playbook("collection from empty (2 clusters)")
            print(f"collection from empty: {results['converge'].seconds:.1f} s", flush=True)
            results["noop"] = lab.playbook("collection no-op re-run")
            print(f"no-op re-run: {results['noop'].seconds:.1f} s", flush=True)
        finally:
            lab.down()

    if not args.skip_big:
        with tempfile.TemporaryDirectory() as tmp:
            lab = Lab(tmp, args.big)
            try:
                results["big"] = lab.playbook(f"collection from empty ({args.big} clusters)")
            finally:
                lab.down()

    print()
    print("| run | time | admin writes | distinct objects created | writes/objects | remote secrets |")
    print("|---|---|---|---|---|---|")
    for r in results.values():
        objs = len(r.objects())
        print(f"| {r.label} | {r.seconds:.1f} s | {r.writes} | {objs} | {fmt_ratio(r.writes, objs)} | {r.remote_secrets()} |")
    print()
    print("| target | measured | met |")
    print("|---|---|---|")
    c = results["converge"]
    if "baseline" in results:
        ratio = c.seconds / results["baseline"].seconds
        print(f"| collection <= 1.0x the docs baseline | {ratio:.2f}x ({c.seconds:.1f} s vs {results['baseline'].seconds:.1f} s) | {'yes' if ratio <= 1.0 else 'NO'} |")
    n = results["noop"]
    print(f"| no-op re-run <= 10 s and 0 writes | {n.seconds:.1f} s, {n.writes} writes | {'yes' if n.seconds <= 10 and n.writes == 0 else 'NO'} |")
    if "big" in results:
        b = results["big"]
        ratio = b.seconds / c.seconds
        print(f"| {args.big} clusters <= 3x 2 clusters | {ratio:.2f}x ({b.seconds:.1f} s vs {c.seconds:.1f} s) | {'yes' if ratio <= 3 else 'NO'} |")
    objs = len(c.objects())
    ratio = c.writes / objs if objs else float("inf")
    print(f"| writes <= 1.1x distinct objects created (2 clusters) | {ratio:.2f}x ({c.writes} / {objs}) | {'yes' if ratio <= 1.1 else 'NO'} |")

    cores = os.cpu_count()
    print(f"\n| run | CPU of the command's processes | CPU of the lab's processes | busy share of {cores} cores |")
    print("|---|---|---|---|")
    for r in results.values():
        busy = (r.cpu["tools"] + r.cpu["lab"]) / (cores * r.seconds)
        print(f"| {r.label} | {r.cpu['tools']:.1f} s | {r.cpu['lab']:.1f} s | {busy:.0%} |")

    for key in ("converge", "big"):
        if key not in results:
            continue
        r = results[key]
        print(f"\n{r.label}: slowest tasks")
        for name, s in r.slowest_tasks():
            print(f"  {s:7.2f} s  {name}")
        print(f"{r.label}: admin writes by verb and resource")
        for what, count in r.breakdown():
            print(f"  {count:5d}  {what}")
    if "baseline" in results:
        print("\ndocs baseline: admin writes by verb and resource")
        for what, count in results["baseline"].breakdown():
            print(f"  {count:5d}  {what}")


if __name__ == "__main__":
    main()
