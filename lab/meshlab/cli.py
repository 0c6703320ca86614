"""meshlab command line."""
import argparse
import json
import os
import sys
from pathlib import Path

from . import audit, build, inventory, lab, paths, versions


def _lab(args):
    home = Path(args.home) if args.home else paths.default_home(args.slot)
    return lab.Lab(home)


def cmd_build(args):
    unknown = sorted(set(args.components) - set(build.STEPS) - set(build.ALIASES))
    if unknown:
        raise build.BuildError(f"unknown component(s) {', '.join(unknown)}; choose from {', '.join(build.STEPS)}"
                               f" (master is also istio-{versions.ISTIO})")
    timings = build.build(args.components or None)
    print(json.dumps(timings))


def cmd_up(args):
    _lab(args).up(count=args.clusters, slot=args.slot, dataplane=args.dataplane)


def cmd_down(args):
    _lab(args).down(keep=args.keep)


def cmd_stop_apiserver(args):
    _lab(args).stop_apiserver(args.cluster, kill=args.kill)


def cmd_start_apiserver(args):
    _lab(args).start_apiserver(args.cluster)


def cmd_status(args):
    st = _lab(args).status()
    if st is None:
        print("meshlab: no lab here")
        return 1
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    print(f"home {st['home']} (slot {st['slot']})  KUBECONFIG={st['kubeconfig']}")
    for c in st["clusters"]:
        print(f"  {c['context']:10} {c['server']}  services {c['service_cidr']}  pods {c['pod_cidr']}")
    for p in st["processes"]:
        extra = (f"  Istio {p['version']}" if "version" in p else "") + (f"  ports {p['ports']}" if "ports" in p else "")
        print(f"  {'up  ' if p['alive'] else 'DOWN'} {p['pid']:>7}  {p['name']}{extra}")
    for r in st.get("istiods_not_started", []):
        print(f"  NOT STARTED {r['name']}: {r['reason']}: {r['message']}")
    print(f"  data plane: {st['dataplane']}; real pods: {len(st['real_pods'])} (all other pods are simulated)")
    for p in st["real_pods"]:
        print(f"    {p['cluster']} {p['pod']:45} {p['ip']:15} network {p['network'] or '-':10} Istio {p['istio'] or '-':22} "
              f"{'ready' if p['ready'] else 'NOT READY'} restarts {p['restarts']}")
    return 0 if all(p["alive"] for p in st["processes"]) else 1


def cmd_env(args):
    try:
        version = versions.istio_version(args.istio)
    except versions.UnknownIstioVersion as e:
        raise lab.LabError(str(e)) from None
    lb = _lab(args)
    if not build.is_built(paths.istio_component(version)):
        print(f"meshlab: Istio {version} is not built; run `meshlab build {paths.istio_component(version)}`",
              file=sys.stderr)
    # That version's istioctl (and pilot-*) first; master's stays on PATH after it, with the other tools.
    istio_bin = str(paths.istio_dir(version) / "bin")
    print(f"export KUBECONFIG={lb.kubeconfig()}")
    print(f"export PATH={':'.join([istio_bin] + [d for d in paths.bin_dirs() if d != istio_bin])}:$PATH")
    print(f"export MESHLAB_ISTIO_VERSION={version}")
    print(f"export MESHLAB_ISTIO_CHARTS={paths.charts_dir(version)}")
    print(f"export MESHLAB_ISTIO_SAMPLES={paths.samples_dir(version)}")
    print(f"export MESHLAB_GATEWAY_API_CRDS={paths.gateway_api_crds_dir()}")


def cmd_openshift(args):
    c = _lab(args).openshift(args.cluster)
    print(f"{c.context}: serves the OpenShift API groups (config, security, route.openshift.io; k8s.cni.cncf.io)")


def cmd_mark(_args):
    print(audit.mark())


def cmd_writes(args):
    lb = _lab(args)
    state = lb.state()
    if state is None:
        print("meshlab: no lab here", file=sys.stderr)
        return 1
    counts = {c.context: audit.writes(lb.home / c.name / "audit.log", lab.ADMIN_USER, args.since)
              for c in lb.clusters(state)}
    if args.objects:
        print(json.dumps({c.context: audit.writes(lb.home / c.name / "audit.log", lab.ADMIN_USER, args.since, details=True)
                          for c in lb.clusters(state)}))
    elif args.json:
        print(json.dumps(counts))
    else:
        for ctx, n in counts.items():
            print(f"{ctx} {n}")
        if args.verbose:
            for c in lb.clusters(state):
                for w in audit.writes(lb.home / c.name / "audit.log", lab.ADMIN_USER, args.since, details=True):
                    print(f"  {c.context} {w['verb']:7} {w['code']} {w['uri']}")
    return 0


def cmd_inventory(args):
    lb = _lab(args)
    if lb.state() is None:
        print("meshlab: no lab here; run `meshlab up` first", file=sys.stderr)
        return 1
    try:
        text = inventory.render(lb, args.model, args.ca_dir, args.istio)
    except (ValueError, versions.UnknownIstioVersion) as e:
        print(f"meshlab: error: {e}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="meshlab", description=__doc__)
    p.add_argument("--slot", type=int, default=int(os.environ.get("MESHLAB_SLOT", "0")),
                   help="which of the lab's address and port ranges to use (0-7), so labs can run side by side")
    p.add_argument("--home", help="state directory (default /tmp/meshlab, or /tmp/meshlab-s<slot>)")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the pinned binaries from Go modules (cached by version)")
    b.add_argument("components", nargs="*", metavar="COMPONENT", help=f"any of {', '.join(build.STEPS)} (default: all)")
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("up", help="start N clusters and the supervisor")
    u.add_argument("--clusters", type=int, default=2)
    u.add_argument("--dataplane", choices=lab.DATAPLANES, default=None,
                   help="real: pods with an istio-proxy container or a known sample image run for real (pilot-agent "
                        "and Envoy in the pod's network namespace; needs root); simulated: every pod is kwok's "
                        "(default: $MESHLAB_DATAPLANE, else real)")
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="stop everything the lab started, by pid")
    d.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    d.set_defaults(func=cmd_down)
    k = sub.add_parser("stop-apiserver", help="stop one cluster's kube-apiserver (by pid; etcd and the rest keep running)")
    k.add_argument("--cluster", type=int, required=True, metavar="N", help="cluster number (1 for the first)")
    k.add_argument("--kill", action="store_true", help="SIGKILL at once, as a crash (default: SIGTERM, then SIGKILL)")
    k.set_defaults(func=cmd_stop_apiserver)
    r = sub.add_parser("start-apiserver", help="start a stopped kube-apiserver again: same port, certificates, etcd data")
    r.add_argument("--cluster", type=int, required=True, metavar="N", help="cluster number (1 for the first)")
    r.set_defaults(func=cmd_start_apiserver)
    s = sub.add_parser("status", help="clusters, processes and istiods")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    e = sub.add_parser("env", help="shell exports for the lab")
    e.add_argument("--istio", default=versions.ISTIO_DEFAULT, metavar="VERSION",
                   help=f"whose istioctl, charts and samples: {', '.join(versions.ISTIO_VERSIONS)} or master "
                        f"(default {versions.ISTIO_DEFAULT}, the newest release)")
    e.set_defaults(func=cmd_env)
    o = sub.add_parser("openshift", help="make one cluster serve the OpenShift API groups (CRDs), for detection")
    o.add_argument("--cluster", type=int, required=True, help="cluster number (1-based)")
    o.set_defaults(func=cmd_openshift)
    sub.add_parser("mark", help="print a MARK meaning 'from now on'").set_defaults(func=cmd_mark)
    w = sub.add_parser("writes", help="write requests by the admin identity, per cluster")
    w.add_argument("--since", help="a MARK from `meshlab mark`")
    w.add_argument("--json", action="store_true")
    w.add_argument("-v", "--verbose", action="store_true", help="list each write")
    w.add_argument("--objects", action="store_true",
                   help="JSON: per cluster, each write with its object (resource, apiGroup, namespace, name), "
                        "subresource, response code and user agent")
    w.set_defaults(func=cmd_writes)
    i = sub.add_parser("inventory", help="a ready meshops.istio inventory for this lab")
    i.add_argument("--model", required=True, choices=inventory.MODELS)
    i.add_argument("--ca-dir", help="istio_ca_dir for the generated mesh CA")
    i.add_argument("--istio", metavar="VERSION", help="install that Istio release's charts (istio_charts, "
                   "istio_version) and use its istioctl (default: the master build's)")
    i.add_argument("-o", "--output", help="write to this file instead of standard output")
    i.set_defaults(func=cmd_inventory)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        rc = args.func(args)
    except (lab.LabError, build.BuildError) as e:
        print(f"meshlab: error: {e}", file=sys.stderr)
        return 2
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
