"""Bring a lab up and down: per cluster etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
with one node, then the supervisor (load balancers and real istiods). State lives in <home>/state.json."""
import copy
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from . import apps, kubeproxy, layout as lay, openshift, paths, pki, podnet, pods, procs

AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
"""
# One identity per component: (file stem, CN). All are cluster admins; the audit log tells them apart.
IDENTITIES = [("admin", "lab-admin"), ("kcm", "system:kube-controller-manager"), ("sched", "system:kube-scheduler"),
              ("kwok", "lab-kwok"), ("controller", "lab-controller")]
ADMIN_USER = "lab-admin"
DATAPLANES = ("real", "simulated")
# kwok runs `kubectl exec` commands itself, found on its PATH: this shim is every command a real pod's image has.
# Started with the pod's Exec object's MESHLAB_POD/MESHLAB_CONTAINER, it runs the command inside the pod (its
# network namespace, /etc/hosts and resolv.conf) when that container has it, as a container would.
PODEXEC = r"""#!/bin/sh
# kwok's PATH is the shim directory itself; the shim uses the machine's programs.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
cmd=$(basename "$0")
d=$MESHLAB_POD
if [ -z "$d" ] || [ ! -f "$d/netns" ]; then
  echo "meshlab: $cmd: this pod is not running for real" >&2; exit 126
fi
bin="$d/bin/$MESHLAB_CONTAINER"
if [ ! -e "$bin/$cmd" ]; then
  echo "exec: \"$cmd\": executable file not found in \$PATH" >&2; exit 127
fi
exec /usr/sbin/ip netns exec "$(cat "$d/netns")" /bin/sh -c \
  'for f in hosts hostname resolv.conf; do mount --bind "$0/$f" /etc/$f || exit 1; done; cd "$0/root" && exec "$@"' \
  "$d" env -i PATH="$bin" HOSTNAME="$(cat "$d/hostname")" HOME=/root "$cmd" "$@"
"""


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.state_file = self.home / "state.json"

    # ---- state -------------------------------------------------------------------------------------------
    def state(self):
        if not self.state_file.exists():
            return None
        return json.loads(self.state_file.read_text())

    def _save(self, state):
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def clusters(self, state=None):
        state = state or self.state()
        return lay.clusters(state["slot"], state["clusters"])

    def kubeconfig(self):
        return self.home / "kubeconfig"

    def records(self, state=None):
        """Every process record: the ones `up` started plus the istiods the supervisor started."""
        state = state or self.state() or {"procs": []}
        recs = list(state["procs"])
        for pidfile in sorted(self.home.glob("c*/istiod-*/process.json")):
            try:
                recs.append(json.loads(pidfile.read_text()))
            except (OSError, ValueError):
                continue
        return (recs + [p for pod in self.real_pods() for p in pod["procs"].values()]
                + kubeproxy.records(self.home))

    def real_pods(self):
        """Records of the pods running for real (see pods.py)."""
        found = []
        for f in sorted(self.home.glob("c*/pods/*/pod.json")):
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            rec["cluster"] = f.parts[-4]
            found.append(rec)
        return found

    # ---- up ----------------------------------------------------------------------------------------------
    def up(self, count=2, slot=0, out=sys.stdout, dataplane=None):
        if not isinstance(count, int) or count < 1 or count > lay.MAX_CLUSTERS:
            raise LabError(f"--clusters must be between 1 and {lay.MAX_CLUSTERS}, got {count}")
        if slot < 0 or slot >= lay.MAX_SLOTS:
            raise LabError(f"--slot must be between 0 and {lay.MAX_SLOTS - 1}, got {slot}")
        dataplane = dataplane or os.environ.get("MESHLAB_DATAPLANE") or "real"
        if dataplane not in DATAPLANES:
            raise LabError(f"--dataplane must be one of {', '.join(DATAPLANES)}, got {dataplane!r}")
        if dataplane == "real":
            if os.geteuid() != 0:
                raise LabError("real pods need root (network namespaces, mounts, iptables); run as root or use "
                               "--dataplane simulated")
            missing_tools = podnet.missing_tools()
            if missing_tools:
                raise LabError(f"real pods need {', '.join(missing_tools)} (see bindep.txt: apt-get install iptables "
                               "socat iproute2 util-linux); or use --dataplane simulated")
        state = self.state()
        if state and any(procs.alive(r) for r in self.records(state)):
            raise LabError(f"a lab is already running in {self.home}; run `meshlab down` first")
        missing = [str(paths.binary(b)) for b in ("etcd", "kube-apiserver", "kube-controller-manager",
                                                   "kube-scheduler", "kubectl", "kwok", "pilot-discovery")
                   if not paths.binary(b).exists()]
        if missing:
            raise LabError("missing binaries (run `meshlab build`): " + ", ".join(missing))
        clusters = lay.clusters(slot, count)
        busy = [f"127.0.0.1:{p} ({c.context})" for c in clusters for p in c.fixed_ports()
                if procs.port_in_use("127.0.0.1", p)]
        if busy:
            raise LabError("ports already in use: " + ", ".join(busy) + " (another lab in this slot? use --slot)")
        # What a crashed lab of this slot left: its pods' processes (by their recorded pids), its namespaces.
        if self.home.exists():
            pods.stop_leftovers(self.home)
            kubeproxy.stop_leftovers(self.home)
        if os.geteuid() == 0 and shutil.which("ip"):
            podnet.delete_all(slot)
        pods.remove_roots(slot)
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True)
        state = {"slot": slot, "clusters": count, "home": str(self.home), "procs": [], "started": time.time(),
                 "dataplane": dataplane}
        self._save(state)
        t0 = time.monotonic()
        try:
            self._start(state, clusters, out)
        except BaseException:
            procs.stop(self.records(state))
            raise
        state["up_seconds"] = round(time.monotonic() - t0, 2)
        self._save(state)
        print(f"meshlab: {count} cluster(s) up in {state['up_seconds']}s; KUBECONFIG={self.kubeconfig()} "
              f"contexts: {' '.join(c.context for c in clusters)}", file=out, flush=True)
        return state

    def _spawn(self, state, name, argv, log, **kw):
        rec = procs.spawn(name, argv, log, **kw)
        # The command line is kept so that one component can be started again exactly as before (start_apiserver).
        rec["argv"] = list(argv)
        state["procs"].append(rec)
        self._save(state)
        return rec

    def _start(self, state, clusters, out):
        (self.home / "audit-policy.yaml").write_text(AUDIT_POLICY)
        kwok_crds = paths.component_dir("kwok") / "crd"
        podexec = self.home / "podexec"
        podexec.mkdir()
        (podexec / "meshlab-podexec").write_text(PODEXEC)
        (podexec / "meshlab-podexec").chmod(0o755)
        for name in apps.all_commands():
            (podexec / name).symlink_to("meshlab-podexec")
        merged = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
        for c in clusters:
            d = self.home / c.name
            ca = pki.ClusterPKI(d, c.context, c.first_service_ip)
            ca_pem = (d / "ca.crt").read_bytes()
            for stem, cn in IDENTITIES:
                cert, key = ca.client(stem, cn)
                kc = pki.kubeconfig(c.context, c.server, ca_pem, f"{c.context}-{stem}", cert, key)
                (d / f"{stem}.kubeconfig").write_text(yaml.safe_dump(kc))
                if stem == "admin":
                    for k in ("clusters", "users", "contexts"):
                        merged[k] += kc[k]
            self._spawn(state, f"{c.context}/etcd", [
                str(paths.binary("etcd")), "--name", c.name, "--data-dir", str(d / "etcd"),
                f"--listen-client-urls=http://127.0.0.1:{c.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{c.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{c.etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{c.etcd_peer_port}",
                f"--initial-cluster={c.name}=http://127.0.0.1:{c.etcd_peer_port}",
                "--unsafe-no-fsync", "--listen-metrics-urls=", "--log-level=warn"], d / "etcd.log")
            self._spawn(state, f"{c.context}/kube-apiserver", [
                str(paths.binary("kube-apiserver")), f"--etcd-servers=http://127.0.0.1:{c.etcd_port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={c.api_port}",
                f"--tls-cert-file={d}/apiserver.crt", f"--tls-private-key-file={d}/apiserver.key",
                f"--client-ca-file={d}/ca.crt", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={d}/sa.pub", f"--service-account-signing-key-file={d}/sa.key",
                f"--service-cluster-ip-range={c.service_cidr}", "--authorization-mode=Node,RBAC",
                "--allow-privileged=true", f"--audit-log-path={d}/audit.log",
                f"--audit-policy-file={self.home}/audit-policy.yaml", "--audit-log-format=json",
                "--profiling=false"], d / "apiserver.log")
        kubeconfig = dict(merged, **{"current-context": clusters[0].context})
        self.kubeconfig().write_text(yaml.safe_dump(kubeconfig))
        self.kubeconfig().chmod(0o600)
        for c in clusters:
            self._wait_ready(state, c)
        kwok_config = []
        if state["dataplane"] == "real":
            self._kwok_stages(self.home / "kwok-stages.yaml")
            kwok_config = [f"--config={self.home / 'kwok-stages.yaml'}"]
        for c in clusters:
            d = self.home / c.name
            kc = {stem: str(d / f"{stem}.kubeconfig") for stem, _ in IDENTITIES}
            for kind in ("portforwards", "execs", "logs"):
                self._kubectl(c, "controller", "apply", "--server-side", "-f", str(kwok_crds / f"{kind}.yaml"))
            self._spawn(state, f"{c.context}/kube-controller-manager", [
                str(paths.binary("kube-controller-manager")), f"--kubeconfig={kc['kcm']}",
                f"--authentication-kubeconfig={kc['kcm']}", f"--authorization-kubeconfig={kc['kcm']}",
                "--controllers=*", f"--service-account-private-key-file={d}/sa.key", f"--root-ca-file={d}/ca.crt",
                "--use-service-account-credentials=false", "--leader-elect=false", "--bind-address=127.0.0.1",
                f"--secure-port={c.kcm_port}", f"--cluster-signing-cert-file={d}/ca.crt",
                f"--cluster-signing-key-file={d}/ca.key"], d / "kcm.log")
            self._spawn(state, f"{c.context}/kube-scheduler", [
                str(paths.binary("kube-scheduler")), f"--kubeconfig={kc['sched']}",
                f"--authentication-kubeconfig={kc['sched']}", f"--authorization-kubeconfig={kc['sched']}",
                "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={c.sched_port}"], d / "sched.log")
            # Port-forwards to istiod pods are declared by the supervisor as PortForward objects (kwok CRD).
            self._spawn(state, f"{c.context}/kwok", [
                str(paths.binary("kwok")), f"--kubeconfig={kc['kwok']}", "--manage-all-nodes=true",
                f"--cidr={c.pod_cidr}", "--node-ip=127.0.0.1", f"--node-port={c.kwok_port}",
                f"--server-address=127.0.0.1:{c.kwok_port}", "--enable-crds=PortForward,Exec,Logs",
                # Heartbeats through a node Lease: kwok's status updates alone come ~55 s apart, longer than the
                # node monitor grace period, so the node flapped NotReady and every pod stayed not Ready.
                "--node-lease-duration-seconds=40", *kwok_config], d / "kwok.log",
                # exec finds commands on kwok's PATH: only the shim, so nothing runs outside a pod.
                env=dict(os.environ, PATH=str(podexec)))
            self._kubectl(c, "controller", "apply", "-f", "-", stdin=yaml.safe_dump(self._node(c, state["dataplane"])))
        for c in clusters:
            self._wait_schedulable(state, c)
        sup = self._spawn(state, "supervisor", [sys.executable, "-m", "meshlab.supervisor", str(self.home)],
                          self.home / "supervisor.log", env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + 30
        while not (self.home / "supervisor.ready").exists():
            self._check_alive(state)
            if time.monotonic() > deadline:
                raise LabError(f"supervisor did not start; see {sup['log']}")
            time.sleep(0.1)

    @staticmethod
    def _kwok_stages(path):
        """kwok's own pod stages, except that injected pods the lab runs for real start not Ready: the pod runner
        sets Ready when the proxy is (Gateway API gateways stay simulated, see pods.is_real_candidate)."""
        crd = paths.component_dir("kwok") / "crd"
        ready = yaml.safe_load((crd / "stage-pod-ready.yaml").read_text())
        injected = {"key": '.metadata.annotations["sidecar.istio.io/status"]', "operator": "Exists"}
        gateway_api = '.metadata.labels["gateway.networking.k8s.io/gateway-name"]'
        plain = copy.deepcopy(ready)
        plain["spec"]["selector"]["matchExpressions"].append(dict(injected, operator="DoesNotExist"))
        simulated = copy.deepcopy(ready)
        simulated["metadata"]["name"] = "pod-ready-gateway-api"
        simulated["spec"]["selector"]["matchExpressions"] += [injected, {"key": gateway_api, "operator": "Exists"}]
        real = copy.deepcopy(ready)
        real["metadata"]["name"] = "pod-ready-real"
        real["spec"]["selector"]["matchExpressions"] += [injected, {"key": gateway_api, "operator": "DoesNotExist"}]
        tmpl = real["spec"]["next"]["statusTemplate"]
        for cond in ("Ready", "ContainersReady"):
            old = f'status: "True"\n  type: {cond}\n'
            if old not in tmpl:
                raise LabError(f"kwok's pod-ready stage changed; cannot find the {cond} condition in it")
            tmpl = tmpl.replace(old, f'status: "False"\n  type: {cond}\n')
        # Only the containers' ready flags (the init containers' stay as kwok has them).
        head, sep, tail = tmpl.partition("initContainerStatuses:")
        real["spec"]["next"]["statusTemplate"] = head.replace("ready: true", "ready: false") + sep + tail
        docs = [plain, simulated, real] + [yaml.safe_load((crd / f"stage-{s}.yaml").read_text())
                                           for s in ("pod-complete", "pod-delete")]
        path.write_text(yaml.safe_dump_all(docs))

    @staticmethod
    def _node(c, dataplane="simulated"):
        # kwok's "fake" mark only where no pod runs for real (kwok manages the node either way).
        annotations = {"node.alpha.kubernetes.io/ttl": "0"}
        if dataplane == "simulated":
            annotations["kwok.x-k8s.io/node"] = "fake"
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"{c.context}-node",
                             "annotations": annotations,
                             "labels": {"type": "kwok", "kubernetes.io/hostname": f"{c.context}-node",
                                        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                        "topology.kubernetes.io/region": f"region{c.index}",
                                        "topology.kubernetes.io/zone": f"zone{c.index}"}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}

    def openshift(self, index, version="4.20.0"):
        """Serve the OpenShift API groups in cluster `index` (1-based), so OpenShift detection is real."""
        state = self.state()
        if state is None:
            raise LabError("no lab here; run `meshlab up` first")
        found = [c for c in self.clusters(state) if c.index == index]
        if not found:
            raise LabError(f"no cluster {index} in this lab (it has {len(self.clusters(state))})")
        c = found[0]
        crds = openshift.crds()
        self._kubectl(c, "controller", "apply", "-f", "-", stdin=yaml.safe_dump_all(crds))
        for crd in crds:
            self._kubectl(c, "controller", "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}")
        self._kubectl(c, "controller", "apply", "-f", "-", stdin=yaml.safe_dump_all(openshift.objects(version)))
        return c

    def _kubectl(self, c, identity, *args, stdin=None):
        cmd = [str(paths.binary("kubectl")), f"--kubeconfig={self.home / c.name / (identity + '.kubeconfig')}", *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise LabError(f"{c.context}: kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def _check_alive(self, state):
        for r in state["procs"]:
            if not procs.alive(r):
                tail = Path(r["log"]).read_text(errors="replace").splitlines()[-15:] if Path(r["log"]).exists() else []
                raise LabError(f"{r['name']} exited during start-up; last lines of {r['log']}:\n  " + "\n  ".join(tail))

    def _wait_ready(self, state, c, timeout=90):
        ctx = ssl.create_default_context(cafile=str(self.home / c.name / "ca.crt"))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{c.server}/readyz", context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            self._check_alive(state)
            if time.monotonic() > deadline:
                raise LabError(f"{c.context}: kube-apiserver not ready after {timeout}s; see {self.home / c.name}/apiserver.log")
            time.sleep(0.2)

    def _wait_schedulable(self, state, c, timeout=60):
        """Until the node is Ready without taints and the default ServiceAccount exists: pods can then run."""
        deadline = time.monotonic() + timeout
        while True:
            node = json.loads(self._kubectl(c, "controller", "get", "node", f"{c.context}-node", "-o", "json"))
            ready = any(x["type"] == "Ready" and x["status"] == "True" for x in node.get("status", {}).get("conditions", []))
            tainted = bool(node.get("spec", {}).get("taints"))
            if ready and not tainted:
                sa = self._kubectl(c, "controller", "get", "serviceaccounts", "-n", "default", "-o", "name")
                if "serviceaccount/default" in sa:
                    return
            self._check_alive(state)
            if time.monotonic() > deadline:
                raise LabError(f"{c.context}: node not schedulable after {timeout}s (ready={ready}, taints={tainted})")
            time.sleep(0.2)

    # ---- faults: one cluster's API server down and back -------------------------------------------------
    def _apiserver(self, state, cluster):
        clusters = self.clusters(state)
        if not isinstance(cluster, int) or not 1 <= cluster <= len(clusters):
            raise LabError(f"--cluster must be between 1 and {len(clusters)}, got {cluster}")
        c = clusters[cluster - 1]
        for i, rec in enumerate(state["procs"]):
            if rec["name"] == f"{c.context}/kube-apiserver":
                return c, i, rec
        raise LabError(f"{c.context}: no kube-apiserver in {self.state_file}")

    def stop_apiserver(self, cluster, kill=False, out=sys.stdout):
        """Stop one cluster's kube-apiserver by its recorded pid (SIGKILL with kill, else SIGTERM); etcd and every
        other process keep running, so start_apiserver brings the same cluster back."""
        state = self.state()
        if state is None:
            raise LabError(f"no lab in {self.home}")
        c, dummy, rec = self._apiserver(state, cluster)
        if not procs.alive(rec):
            raise LabError(f"{c.context}: kube-apiserver (pid {rec['pid']}) is not running")
        if kill:
            procs.kill(rec)
        else:
            procs.stop([rec])
        if procs.alive(rec):
            raise LabError(f"{c.context}: kube-apiserver (pid {rec['pid']}) did not stop")
        # The kernel may release the listening socket a moment after the pid is gone; callers rely on a free port.
        deadline = time.monotonic() + 10
        while procs.port_in_use("127.0.0.1", c.api_port):
            if time.monotonic() > deadline:
                raise LabError(f"{c.context}: port 127.0.0.1:{c.api_port} still in use after kube-apiserver stopped")
            time.sleep(0.1)
        print(f"meshlab: {c.context}: kube-apiserver (pid {rec['pid']}) stopped"
              + (" with SIGKILL" if kill else ""), file=out, flush=True)
        return rec

    def start_apiserver(self, cluster, out=sys.stdout):
        """Start a stopped kube-apiserver again with its recorded command line: the same port, certificates, audit
        log and etcd data. Returns when it is ready."""
        state = self.state()
        if state is None:
            raise LabError(f"no lab in {self.home}")
        c, i, rec = self._apiserver(state, cluster)
        if procs.alive(rec):
            raise LabError(f"{c.context}: kube-apiserver (pid {rec['pid']}) is already running")
        if "argv" not in rec:
            raise LabError(f"{c.context}: this lab did not record the kube-apiserver command line; run `meshlab up` again")
        busy = procs.port_in_use("127.0.0.1", c.api_port)
        if busy:
            raise LabError(f"{c.context}: port 127.0.0.1:{c.api_port} is in use by another process")
        new = procs.spawn(rec["name"], rec["argv"], rec["log"])
        new["argv"] = rec["argv"]
        state["procs"][i] = new  # same place: `down` keeps stopping in reverse start order
        self._save(state)
        self._wait_ready(state, c)
        print(f"meshlab: {c.context}: kube-apiserver (pid {new['pid']}) ready on {c.server}", file=out, flush=True)
        return new

    # ---- down --------------------------------------------------------------------------------------------
    def down(self, keep=False, out=sys.stdout):
        state = self.state()
        if state is None:
            print(f"meshlab: nothing running in {self.home}", file=out)
            return []
        recs = self.records(state)
        # The supervisor first, so it does not restart what is being stopped; then istiods; then the rest in
        # reverse start order.
        order = ([r for r in recs if r["name"] == "supervisor"] + [r for r in recs if "/istiod" in r["name"]]
                 + [r for r in reversed(state["procs"]) if r["name"] != "supervisor"])
        killed = []
        for r in order:
            killed += procs.stop([r])
        # The supervisor stops the real pods and removes the namespaces; after a crash of it, do that here.
        pods.stop_leftovers(self.home)
        kubeproxy.stop_leftovers(self.home)
        if state.get("dataplane") == "real":
            podnet.delete_all(state["slot"])
            pods.remove_roots(state["slot"])
        still = [r["name"] for r in recs if procs.alive(r)]
        if still:
            raise LabError("could not stop: " + ", ".join(still))
        if not keep:
            shutil.rmtree(self.home, ignore_errors=True)
        print(f"meshlab: stopped {len(recs)} process(es)" + (f" (SIGKILL: {', '.join(killed)})" if killed else ""),
              file=out)
        return recs

    # ---- status ------------------------------------------------------------------------------------------
    def status(self):
        state = self.state()
        if state is None:
            return None
        rows = [{"name": r["name"], "pid": r["pid"], "alive": procs.alive(r), **({"ports": r["ports"]} if "ports" in r else {}),
                 **({"version": r["version"]} if "version" in r else {})}
                for r in self.records(state)]
        return {"home": str(self.home), "slot": state["slot"], "kubeconfig": str(self.kubeconfig()),
                "clusters": [{"context": c.context, "server": c.server, "service_cidr": c.service_cidr,
                              "pod_cidr": c.pod_cidr} for c in self.clusters(state)],
                "dataplane": state.get("dataplane", "simulated"),
                "real_pods": [{"cluster": p["cluster"], "pod": f"{p['namespace']}/{p['name']}", "ip": p["ip"],
                               "network": p["network"], "istio": p["version"], "ready": p["ready"],
                               "restarts": p["restarts"], "netns": p["netns"]} for p in self.real_pods()],
                "processes": rows,
                # istiod Deployments the supervisor does not run (no lab build of their image tag): its records.
                "istiods_not_started": self._json_files("c*/istiod-*/nobuild.json")}

    def _json_files(self, pattern):
        found = []
        for f in sorted(self.home.glob(pattern)):
            try:
                found.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        return found
