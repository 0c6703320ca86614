"""Every object of every cluster, by name: what an uninstall is compared against.

    python cluster_snapshot.py take --context C [--context C2 ...] -o FILE   (kubectl and KUBECONFIG from the environment)
    python cluster_snapshot.py compare BEFORE AFTER                            (exit 1 and list the differences)

All kinds the API server serves that support list (`kubectl api-resources --verbs=list`), namespaced and
cluster-scoped, except what changes on its own: Events, Leases, and the lab's own objects (label
app.kubernetes.io/managed-by=meshlab: kwok PortForward, Exec and Logs objects, and the WorkloadEntries standing for
real pods), which the lab removes on its own after the pods they serve.
"""
import argparse
import json
import subprocess
import sys

CHURN = {"Event", "Lease"}
LAB_LABEL = "app.kubernetes.io/managed-by"
COLUMNS = "KIND:.kind,API:.apiVersion,NS:.metadata.namespace,NAME:.metadata.name,BY:.metadata.labels.app\\.kubernetes\\.io/managed-by"


def kubectl(context, *args, env=None):
    proc = subprocess.run(["kubectl", "--context", context, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl --context {context} {' '.join(args)}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def take_one(context, env=None):
    """Sorted 'Kind.group namespace/name' strings ('-' for cluster-scoped) of one cluster."""
    kinds = kubectl(context, "api-resources", "--verbs=list", "-o", "name", env=env).split()
    out = set()
    listing = kubectl(context, "get", ",".join(kinds), "-A", "--no-headers", "-o", "custom-columns=" + COLUMNS,
                      "--ignore-not-found", env=env)
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) != 5:
            continue
        kind, api, ns, name, by = fields
        if kind in CHURN or by == "meshlab":
            continue
        group = api.rpartition("/")[0]
        out.add("%s%s %s/%s" % (kind, "." + group if group else "", "-" if ns == "<none>" else ns, name))
    return sorted(out)


def take(contexts, env=None):
    return dict((c, take_one(c, env)) for c in contexts)


def compare(before, after):
    """{context: {'added': [...], 'removed': [...]}} for the clusters that differ."""
    out = {}
    for context in sorted(set(before) | set(after)):
        b, a = set(before.get(context, ())), set(after.get(context, ()))
        if a != b:
            out[context] = {"added": sorted(a - b), "removed": sorted(b - a)}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("take")
    t.add_argument("--context", action="append", required=True)
    t.add_argument("-o", "--output", required=True)
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = p.parse_args(argv)
    if args.cmd == "take":
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(take(args.context), f, indent=1)
        return 0
    with open(args.before, encoding="utf-8") as f:
        before = json.load(f)
    with open(args.after, encoding="utf-8") as f:
        after = json.load(f)
    diff = compare(before, after)
    print(json.dumps(diff, indent=1) if diff else "equal")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
