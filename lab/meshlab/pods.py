"""Real pods: the lab as the container runtime for pods it can run.

A pod is real when it has an `istio-proxy` container (injected sidecars, and gateways of the `gateway` chart) or
a container of an image in meshlab.apps. For such a pod, once kwok has given it an IP, the lab
- makes its network namespace (podnet) on its cluster's mesh network,
- lays out the volumes the istio-proxy container mounts (service-account token by TokenRequest with the projected
  volume's audience and lifetime, renewed at 80% as the kubelet does; ConfigMaps; downward API; emptyDirs) under
  the pod's own directory, which is the working directory of its processes (pilot-agent uses relative paths),
- runs istio-init's istio-iptables, then pilot-agent with Upstream Envoy of the version the proxy image's tag names
  (as the container's user, with the container's env and args), and the app programs of known images,
- patches the pod's Ready condition to follow pilot-agent's readiness (15021), gives the pod the LoadBalancer
  addresses of the Services that select it, and a WorkloadEntry (EndpointSlices refuse loopback pod IPs, so
  this is how the pod's Services get their endpoints in istiod),
- restarts pilot-agent when it exits, and stops everything (by pid) and removes the namespace when the pod goes.
istiod is outside the cluster (the supervisor runs it on 127.0.0.1), so the pod's /etc/hosts names the istiod it
was injected for as 127.0.0.1, where a socat in the pod's namespace forwards 15012 to that istiod. On a remote
(no istiod of the pod's cluster serves the discovery host), that socat connects instead, from inside the pod's
namespace as kube-proxy's DNAT would send pilot-agent's connection, to the endpoint of the host's selectorless
Service: the primary's east-west gateway (its LoadBalancer address), which passes it on to the primary's istiod pod.

The pod of an istiod Deployment the supervisor runs is real too, as a network presence: its own namespace with its
IP, where socats forward 15010, 15012, 15014 (to that istiod's grpc, secure gRPC and monitoring listeners) and 15017
(to its webhook listener, the istiod Service's ClusterIP:443), and a WorkloadEntry while kwok says it is Ready, so
an east-west gateway that exposes istiod reaches it as it would the pod.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from kubernetes.client.rest import ApiException

from . import apps, dns, paths, podnet, procs

PROXY = "istio-proxy"
INIT = "istio-init"
NETWORK_LABEL = "topology.istio.io/network"
ENDPOINT_LABEL = "meshlab/pod"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
DEFAULT_DISCOVERY = "istiod.istio-system.svc:15012"
# The istiod pod's ports (the chart's containerPorts and the Service's targetPorts) -> the supervisor's listener.
ISTIOD_POD_PORTS = {15010: "grpc", 15012: "secure_grpc", 15014: "monitoring", 15017: "webhook"}
RESTART_BACKOFF = 5.0
PROBE_EVERY = 1.0
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def proxy_container(pod):
    """The pod's Istio proxy: the `istio-proxy` container of the proxyv2 image (ztunnel's container has that name
    too, with its own image)."""
    for c in list(pod.spec.containers or []) + list(pod.spec.init_containers or []):
        if c.name == PROXY and apps.repository(c.image or "").rsplit("/", 1)[-1] == "proxyv2":
            return c
    return None


def app_containers(pod):
    return [c for c in pod.spec.containers or [] if c.name != PROXY and apps.repository(c.image or "") in apps.IMAGES]


def is_real_candidate(pod):
    if pod.spec.host_network:
        return False
    # Gateways that istiod deploys for the Gateway API (ambient east-west) stay simulated until the lab runs the
    # ambient data plane; the supervisor's gateway_endpoints serves them.
    if "gateway.networking.k8s.io/gateway-name" in (pod.metadata.labels or {}):
        return False
    return proxy_container(pod) is not None or bool(app_containers(pod))


class PodRunner:
    """One cluster's real pods; `sync()` is called on every supervisor tick."""

    def __init__(self, watch):
        self.w = watch
        self.slot = watch.layout.slot
        self.dir = watch.dir / "pods"
        self.dir.mkdir(exist_ok=True)
        self.pods = {}          # uid -> record (also saved as <pod dir>/pod.json)
        self.failed = {}        # uid -> reason, for pods that could not start (reported once)
        self.stopping = []      # records of pods that are gone, their processes told to stop
        self.networks = {}      # network name -> bridge index, shared by every cluster of the lab (see _net_index)
        self.lb_new_flows = {}  # LoadBalancer address -> IP of the pod that gets its new connections
        self.dns = dns.ClusterDNS(self.slot, watch.layout, lambda m: log(f"{watch.layout.context}: {m}"))

    # ---- the loop -----------------------------------------------------------------------------------------
    def sync(self):
        services = self.w.core.list_service_for_all_namespaces().items
        self.dns.start()
        self.dns.update(services)
        pods = self.w.core.list_pod_for_all_namespaces().items
        istiods = self.w.running_istiods()
        seen = set()
        for pod in pods:
            uid = pod.metadata.uid
            if pod.metadata.deletion_timestamp or not (is_real_candidate(pod) or self.w.istiod_for_pod(pod, istiods)):
                continue
            if not pod.status.pod_ip or not pod.spec.node_name:
                continue
            seen.add(uid)
            rec = self.pods.get(uid)
            if rec is None:
                if uid in self.failed:
                    continue
                try:
                    rec = self._start(pod)
                except Exception as e:  # the pod stays simulated and says why
                    self.failed[uid] = str(e)
                    self.w.event(pod, "MeshlabPodFailed", f"the lab could not run this pod for real: {e}")
                    log(f"{self.w.layout.context}: pod {pod.metadata.namespace}/{pod.metadata.name}: {e}")
                    continue
                self.pods[uid] = rec
            self._tend(pod, rec, services)
        for uid in [u for u in self.pods if u not in seen]:
            self._stop(self.pods.pop(uid))
        for uid in [u for u in self.failed if u not in seen]:
            self.failed.pop(uid)
        self._balance()
        self._finish_stopping()

    def _balance(self):
        """New connections to each LoadBalancer address go to its oldest ready pod, as a cloud load balancer sends
        them to ready backends only; a pod being deleted gets none, and keeps the ones it has (see podnet)."""
        holders = {}
        for rec in self.pods.values():
            for a in rec["extra_ips"]:
                holders.setdefault(a, []).append(rec)
        for a in sorted(set(holders) | set(self.lb_new_flows)):
            ready = sorted((r for r in holders.get(a, []) if r["ready"]), key=lambda r: r["started"])
            ip = ready[0]["ip"] if ready else None
            if self.lb_new_flows.get(a) != ip:
                podnet.set_lb_new_flows(self.slot, a, ip)
                if ip:
                    self.lb_new_flows[a] = ip
                else:
                    self.lb_new_flows.pop(a, None)

    def stop_all(self):
        self.dns.stop()
        for uid in list(self.pods):
            self._stop(self.pods.pop(uid))
        while self.stopping and any(time.monotonic() < r["stop_deadline"] for r in self.stopping):
            self._finish_stopping()
            time.sleep(0.1)
        self._finish_stopping(force=True)

    # ---- start ----------------------------------------------------------------------------------------------
    def _start(self, pod):
        md = pod.metadata
        proxy = proxy_container(pod)
        version = None
        if proxy is not None:
            tag = apps.tag(proxy.image or "")
            version = paths.version_for_image_tag(tag)   # raises with the known tags
        wd = self.dir / f"{md.namespace}.{md.name}.{md.uid[:8]}"
        if wd.exists():
            shutil.rmtree(wd)
        wd.mkdir(parents=True)
        root = roots_dir(self.slot) / md.uid
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (wd / "root").symlink_to(root)   # processes and kubectl exec start in <pod dir>/root
        net_name = self._network(pod)
        net_index = self._net_index(net_name)
        podnet.route_cluster(self.slot, self.w.layout, net_index)
        ns = podnet.pod_netns(self.slot, md.uid)
        rec = {"uid": md.uid, "namespace": md.namespace, "name": md.name, "ip": pod.status.pod_ip, "netns": ns,
               "network": net_name, "version": version, "dir": str(wd), "root": str(root), "procs": {},
               "extra_ips": [], "ready": None, "restarts": 0, "started": time.time(), "tokens": {},
               "locality": self.w.node_locality(pod.spec.node_name)}
        podnet.add_pod(self.slot, ns, pod.status.pod_ip, net_index)
        istiod = None if is_real_candidate(pod) else self.w.istiod_for_pod(pod)
        if istiod is not None:
            rec["istiod"] = istiod["deployment"]
            try:
                self._istiod_pod_forwards(rec, istiod)
            except BaseException:
                self._stop_now(rec)
                raise
            self._save(rec)
            log(f"{self.w.layout.context}: istiod pod {md.namespace}/{md.name} has a network presence "
                f"({pod.status.pod_ip}, network {net_name or '-'}) in {ns}, forwarding to {istiod['deployment']}")
            return rec
        try:
            self._files(pod, rec, proxy)
            if proxy is not None:
                self._istiod_forward(rec, self._env(pod, proxy))
                init = next((c for c in pod.spec.init_containers or [] if c.name == INIT), None)
                if init is not None:
                    self._run_init(pod, rec, init)
                self._start_agent(pod, rec, proxy)
            for c in app_containers(pod):
                self._start_app(pod, rec, c)
            self._exec_target(pod, rec)
        except BaseException:
            self._stop_now(rec)
            raise
        self._save(rec)
        log(f"{self.w.layout.context}: pod {md.namespace}/{md.name} runs for real ({pod.status.pod_ip}, network "
            f"{net_name or '-'}, Istio {version or '-'}) in {ns}")
        return rec

    def _network(self, pod):
        """The pod's mesh network: its own label (the injector sets it), else its cluster's (istio-system's label)."""
        labels = pod.metadata.labels or {}
        if labels.get(NETWORK_LABEL):
            return labels[NETWORK_LABEL]
        try:
            ns = self.w.core.read_namespace("istio-system")
            return (ns.metadata.labels or {}).get(NETWORK_LABEL, "")
        except ApiException as e:
            if e.status != 404:
                raise
            return ""

    def _net_index(self, name):
        # One bridge per network name across the lab's clusters: the supervisor hands every runner the same dict.
        if name not in self.networks:
            self.networks[name] = len(self.networks) + 1
        return self.networks[name]

    def _save(self, rec):
        Path(rec["dir"], "pod.json").write_text(json.dumps(rec))

    # ---- files: the volumes of the istio-proxy container, /etc/hosts, resolv.conf ----------------------------
    def _files(self, pod, rec, proxy):
        root = Path(rec["root"])
        md = pod.metadata
        volumes = {v.name: v for v in pod.spec.volumes or []}
        uid = gid = 0
        if proxy is not None:
            sc = proxy.security_context
            uid = (sc.run_as_user if sc and sc.run_as_user is not None else 0)
            gid = (sc.run_as_group if sc and sc.run_as_group is not None else uid)
            for m in proxy.volume_mounts or []:
                v = volumes.get(m.name)
                if v is not None:
                    self._volume(pod, rec, v, root / m.mount_path.lstrip("/"))
            # What the proxyv2 image holds: pilot-agent and Envoy in /usr/local/bin (here inside the pod's root, as
            # the cache may sit where the proxy's user cannot reach), the bootstrap template pilot-agent renders.
            _image_file(paths.istio_binary("pilot-agent", rec["version"]), root / "usr/local/bin/pilot-agent")
            _image_file(paths.envoy_binary(rec["version"]), root / "usr/local/bin/envoy")
            tmpl = root / "var/lib/istio/envoy/envoy_bootstrap_tmpl.json"
            tmpl.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(paths.bootstrap_template(rec["version"]), tmpl)
        for sub in ("tmp",):
            (root / sub).mkdir(exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath == str(root) and "usr" in dirnames:
                dirnames.remove("usr")   # the image's files stay root's (and are links to the lab's builds)
            for n in dirnames + filenames:
                os.lchown(os.path.join(dirpath, n), uid, gid)
        os.chown(root, uid, gid)
        rec["uid_gid"] = [uid, gid]
        Path(rec["dir"], "resolv.conf").write_text(
            f"nameserver {dns.dns_address(self.w.layout)}\nsearch {md.namespace}.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:5\n")
        Path(rec["dir"], "hosts").write_text(f"127.0.0.1 localhost\n{pod.status.pod_ip} {md.name}\n")
        Path(rec["dir"], "hostname").write_text(f"{md.name}\n")

    def _volume(self, pod, rec, v, target):
        target.mkdir(parents=True, exist_ok=True)
        # A volume and each source of a projected volume have the same kinds of source (a projection has tokens too).
        for src in (v.projected.sources or []) if v.projected is not None else [v]:
            token = getattr(src, "service_account_token", None)
            if token is not None:
                path = target / token.path
                rec["tokens"][str(path)] = {"audience": token.audience, "seconds": token.expiration_seconds or 3600}
                self._token(pod, rec, str(path))
            elif src.config_map is not None:
                self._configmap(pod, src.config_map.name, src.config_map.items, target, src.config_map.optional)
            elif src.secret is not None:
                name = getattr(src.secret, "secret_name", None) or src.secret.name
                self._secret(pod, name, src.secret.items, target, src.secret.optional)
            elif src.downward_api is not None:
                self._downward(pod, src.downward_api.items, target)
        # emptyDir (and anything else): the empty directory made above.

    @staticmethod
    def _write(path, data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
        tmp.replace(path)

    def _wait_read(self, fn, what, optional, timeout=30):
        # The kubelet keeps a pod in ContainerCreating until its ConfigMaps exist; istio-ca-root-cert comes from istiod.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except ApiException as e:
                if e.status != 404:
                    raise
                if optional:
                    return None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} does not exist")
            time.sleep(0.5)

    def _configmap(self, pod, name, items, target, optional):
        ns = pod.metadata.namespace
        cm = self._wait_read(lambda: self.w.core.read_namespaced_config_map(name, ns), f"ConfigMap {ns}/{name}", optional)
        if cm is None:
            return
        data = dict(cm.data or {})
        data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
        for key, path in ([(i.key, i.path) for i in items] if items else [(k, k) for k in data]):
            if key in data:
                self._write(target / path, data[key])

    def _secret(self, pod, name, items, target, optional):
        ns = pod.metadata.namespace
        s = self._wait_read(lambda: self.w.core.read_namespaced_secret(name, ns), f"Secret {ns}/{name}", optional)
        if s is None:
            return
        data = {k: base64.b64decode(v) for k, v in (s.data or {}).items()}
        for key, path in ([(i.key, i.path) for i in items] if items else [(k, k) for k in data]):
            if key in data:
                self._write(target / path, data[key])

    def _downward(self, pod, items, target):
        for item in items or []:
            if item.field_ref is not None:
                self._write(target / item.path, self._field(pod, item.field_ref.field_path, downward_file=True))

    @staticmethod
    def _field(pod, path, downward_file=False):
        md = pod.metadata
        if path in ("metadata.labels", "metadata.annotations"):
            values = (md.labels if path == "metadata.labels" else md.annotations) or {}
            # The downward API file format: key="value" per line, values quoted as Go's %q does.
            return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(values.items())) + ("\n" if downward_file else "")
        if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
            key = path.split("['", 1)[1].rstrip("']")
            return ((md.labels if path.startswith("metadata.labels") else md.annotations) or {}).get(key, "")
        return {"metadata.name": md.name, "metadata.namespace": md.namespace, "metadata.uid": md.uid,
                "spec.nodeName": pod.spec.node_name, "spec.serviceAccountName": pod.spec.service_account_name or "default",
                "status.hostIP": pod.status.host_ip or "", "status.podIP": pod.status.pod_ip or "",
                "status.podIPs": pod.status.pod_ip or ""}.get(path, "")

    def _token(self, pod, rec, path):
        spec = rec["tokens"][path]
        body = {"spec": {"audiences": [spec["audience"]] if spec["audience"] else None,
                         "expirationSeconds": spec["seconds"],
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod.metadata.name,
                                            "uid": pod.metadata.uid}}}
        tr = self.w.core.create_namespaced_service_account_token(pod.spec.service_account_name or "default",
                                                                 pod.metadata.namespace, body)
        self._write(Path(path), tr.status.token)
        uid, gid = rec.get("uid_gid", (0, 0))
        os.chown(path, uid, gid)
        # The kubelet renews a projected token at 80% of its lifetime.
        spec["renew_at"] = time.time() + 0.8 * spec["seconds"]

    # ---- istiod ------------------------------------------------------------------------------------------
    def _istiod_forward(self, rec, env):
        # The injector puts a non-default discovery address in PROXY_CONFIG; a gateway also has the mounted mesh config.
        discovery = _proxy_config(env).get("discoveryAddress")
        mesh = Path(rec["root"], "etc/istio/config/mesh")
        if not discovery and mesh.exists():
            discovery = ((yaml.safe_load(mesh.read_text()) or {}).get("defaultConfig") or {}).get("discoveryAddress")
        discovery = discovery or DEFAULT_DISCOVERY
        host = discovery.rsplit(":", 1)[0]
        names = {host, (env.get("CA_ADDR") or discovery).rsplit(":", 1)[0]}
        target = self.w.istiod_port_for(host)
        endpoint = None
        if target is None:
            # A remote: the host's Service has no local istiod but endpoints (the primary's east-west gateway).
            endpoint = self.w.service_endpoint_for(host, int(discovery.rsplit(":", 1)[1]))
            if endpoint is None:
                raise RuntimeError(f"no istiod of this cluster serves {discovery} (the pod's discovery address), and "
                                   "its Service has no endpoints")
        with open(Path(rec["dir"], "hosts"), "a", encoding="utf-8") as f:
            for n in sorted(names):
                f.write(f"127.0.0.1 {n}\n")
        # As the proxy's user, with SO_REUSEPORT: an east-west gateway that exposes istiod has Envoy (the same user,
        # SO_REUSEPORT) listen on 0.0.0.0:15012 too, and the kernel hands connections to 127.0.0.1:15012 to this more
        # specific listener; pilot-agent's own connection to the remote's endpoint (below) is then made as its user,
        # which istio-iptables lets out uncaptured, as on a node where kube-proxy DNATs it.
        uid, gid = rec.get("uid_gid", (0, 0))
        user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] if uid else []
        listen = ["ip", "netns", "exec", rec["netns"], *user, "socat",
                  "TCP-LISTEN:15012,bind=127.0.0.1,reuseaddr,reuseport,fork"]
        if endpoint is not None:
            rec["discovery_endpoint"] = list(endpoint)
            rec["procs"]["xds-in"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/xds-in",
                                                 [*listen, f"TCP:{endpoint[0]}:{endpoint[1]}"],
                                                 Path(rec["dir"], "socat.log"))
            return
        # Beside the pod's root: a unix socket path must stay under 108 bytes, which the lab's home may not allow.
        sock = Path(rec["root"] + ".xds.sock")
        rec["procs"]["xds-out"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/xds-out",
                                              ["socat", f"UNIX-LISTEN:{sock},fork,user={uid},group={gid},mode=600",
                                               f"TCP:127.0.0.1:{target}"],
                                              Path(rec["dir"], "socat.log"))
        rec["procs"]["xds-in"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/xds-in",
                                             [*listen, f"UNIX-CONNECT:{sock}"], Path(rec["dir"], "socat.log"))

    def _istiod_pod_forwards(self, rec, istiod):
        """The istiod pod's ports, each a socat pair: podIP:<port> in the pod's namespace -> a unix socket -> the
        supervisor's listener of that istiod in the root namespace (processes in the namespace cannot dial it)."""
        targets = {port: ["127.0.0.1", istiod["ports"][kind]] if kind != "webhook" else list(istiod["webhook"])
                   for port, kind in ISTIOD_POD_PORTS.items()}
        for port, (address, target) in targets.items():
            sock = Path(f"{rec['root']}.{port}.sock")   # beside the pod's root: under 108 bytes
            sock.unlink(missing_ok=True)
            logf = Path(rec["dir"], "socat.log")
            rec["procs"][f"out-{port}"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/out-{port}",
                                                      ["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:{address}:{target}"],
                                                      logf)
            rec["procs"][f"in-{port}"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/in-{port}",
                                                     ["ip", "netns", "exec", rec["netns"], "socat",
                                                      f"TCP-LISTEN:{port},bind={rec['ip']},reuseaddr,fork",
                                                      f"UNIX-CONNECT:{sock}"], logf)
        rec["istiod_targets"] = {str(k): v for k, v in targets.items()}

    # ---- processes -----------------------------------------------------------------------------------------
    def _env(self, pod, container):
        env = {}
        for e in container.env or []:
            if e.value is not None:
                env[e.name] = e.value
            elif e.value_from is not None:
                vf = e.value_from
                if vf.field_ref is not None:
                    env[e.name] = self._field(pod, vf.field_ref.field_path)
                elif vf.resource_field_ref is not None:
                    env[e.name] = self._resource(container, vf.resource_field_ref)
                elif vf.config_map_key_ref is not None:
                    r = vf.config_map_key_ref
                    cm = self._wait_read(lambda: self.w.core.read_namespaced_config_map(r.name, pod.metadata.namespace),
                                         f"ConfigMap {r.name}", r.optional)
                    env[e.name] = ((cm.data or {}) if cm else {}).get(r.key, "")
                elif vf.secret_key_ref is not None:
                    r = vf.secret_key_ref
                    s = self._wait_read(lambda: self.w.core.read_namespaced_secret(r.name, pod.metadata.namespace),
                                        f"Secret {r.name}", r.optional)
                    raw = ((s.data or {}) if s else {}).get(r.key)
                    env[e.name] = base64.b64decode(raw).decode() if raw else ""
        return env

    @staticmethod
    def _resource(container, ref):
        # As the kubelet: the limit, else the node's allocatable (the lab's node: 32 CPUs, 256Gi), over the divisor.
        kind, res = ref.resource.split(".", 1)
        values = (container.resources.limits if kind == "limits" else container.resources.requests) \
            if container.resources else None
        raw = (values or {}).get(res) or {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi"}.get(res, "0")
        qty = _quantity(raw)
        div = _quantity(ref.divisor or "1")
        return str(max(1, int(-(-qty // div)))) if res == "cpu" else str(int(qty // div))

    def _netns_argv(self, rec, argv, uid=0, gid=0, env=None):
        """argv inside the pod: its namespace, its /etc/hosts and resolv.conf, its root as working directory."""
        inner = "for f in hosts hostname resolv.conf; do mount --bind \"$0/$f\" /etc/$f || exit 1; done && " \
                "cd \"$0/root\" && exec \"$@\""
        envv = ["env", "-i", *[f"{k}={v}" for k, v in (env or {}).items()]]
        user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] if uid else []
        return ["ip", "netns", "exec", rec["netns"], "sh", "-c", inner, rec["dir"], *envv, *user, *argv]

    def _base_env(self, pod):
        return {"PATH": HOST_PATH, "HOSTNAME": pod.metadata.name, "HOME": "/root"}

    def _run_init(self, pod, rec, init):
        env = dict(self._base_env(pod), **self._env(pod, init))
        args = list(init.args or [])
        argv = self._netns_argv(rec, [str(paths.istio_binary("pilot-agent", rec["version"])), *args], env=env)
        with open(Path(rec["dir"], "istio-init.log"), "ab") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False)
        if proc.returncode != 0:
            tail = Path(rec["dir"], "istio-init.log").read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"istio-init exited {proc.returncode}: " + " | ".join(tail))

    def _start_agent(self, pod, rec, proxy):
        env = dict(self._base_env(pod), **self._env(pod, proxy))
        # The proxyv2 image has Envoy at /usr/local/bin/envoy; here it is the lab's build of that version.
        config = _proxy_config(env)
        config["binaryPath"] = "./usr/local/bin/envoy"   # relative to the pod's root, its working directory
        env["PROXY_CONFIG"] = json.dumps(config)
        uid, gid = rec["uid_gid"]
        argv = self._netns_argv(rec, ["./usr/local/bin/pilot-agent", *(proxy.args or [])], uid=uid, gid=gid, env=env)
        rec["procs"]["istio-proxy"] = procs.spawn(f"{rec['namespace']}/{rec['name']}/istio-proxy", argv,
                                                  Path(rec["dir"], "istio-proxy.log"))

    def _start_app(self, pod, rec, c):
        spec = apps.IMAGES[apps.repository(c.image)]
        if spec["argv"] is None:
            return
        env = dict(self._base_env(pod), PYTHONUNBUFFERED="1", **spec["env"])
        env.update(self._env(pod, c))
        rec["procs"][c.name] = procs.spawn(f"{rec['namespace']}/{rec['name']}/{c.name}",
                                           self._netns_argv(rec, spec["argv"], env=env),
                                           Path(rec["dir"], f"{c.name}.log"))

    # ---- kubectl exec: kwok runs the lab's podexec shim, which enters the pod (see lab.PODEXEC) --------------
    def _exec_target(self, pod, rec):
        targets = []
        for c in pod.spec.containers or []:
            if c.name == PROXY:
                commands = {n: shutil.which(n) for n in apps.PROXY_COMMANDS}
                commands["pilot-agent"] = str(Path(rec["root"], "usr/local/bin/pilot-agent"))
                commands["envoy"] = str(Path(rec["root"], "usr/local/bin/envoy"))
            elif apps.repository(c.image or "") in apps.IMAGES:
                names = apps.IMAGES[apps.repository(c.image)]["commands"]
                commands = {n: shutil.which(n if n != "python" else "python3") for n in names}
            else:
                continue
            bindir = Path(rec["dir"], "bin", c.name)
            bindir.mkdir(parents=True, exist_ok=True)
            for n, target in commands.items():
                if target:
                    os.symlink(target, bindir / n)
            targets.append({"containers": [c.name],
                            "local": {"envs": [{"name": "MESHLAB_POD", "value": rec["dir"]},
                                               {"name": "MESHLAB_CONTAINER", "value": c.name}]}})
        Path(rec["dir"], "netns").write_text(rec["netns"])
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Exec",
                "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
                             "labels": {"app.kubernetes.io/managed-by": "meshlab"}},
                "spec": {"execs": targets}}
        # kubectl logs: kwok serves each container's log file.
        logs = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": dict(body["metadata"]),
                "spec": {"logs": [{"containers": [c], "logsFile": str(Path(rec["dir"], f"{c}.cri.log")), "follow": True}
                                  for c in [t["containers"][0] for t in targets]]}}
        for t in targets:
            Path(rec["dir"], f"{t['containers'][0]}.cri.log").touch()
        for plural, obj in (("execs", body), ("logs", logs)):
            try:
                self.w.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace,
                                                              plural, obj)
            except ApiException as e:
                if e.status != 409:
                    raise

    # ---- while running ---------------------------------------------------------------------------------------
    def _tend(self, pod, rec, services):
        if rec.get("istiod"):
            self._tend_istiod(pod, rec)
            return
        now = time.time()
        proxy = proxy_container(pod)
        for path, spec in rec["tokens"].items():
            if now >= spec.get("renew_at", 0):
                self._token(pod, rec, path)
        agent = rec["procs"].get("istio-proxy")
        if proxy is not None and agent is not None and not procs.alive(agent):
            if now - rec.get("agent_exit", now) >= RESTART_BACKOFF:
                rec["restarts"] += 1
                log(f"{self.w.layout.context}: pod {rec['namespace']}/{rec['name']}: pilot-agent exited; "
                    f"restart {rec['restarts']} (see {agent['log']})")
                procs.stop_group(agent)
                self._start_agent(pod, rec, proxy)
                rec.pop("agent_exit", None)
                self._save(rec)
            else:
                rec.setdefault("agent_exit", now)
        self._addresses(pod, rec, services)
        self._logs(rec)
        if now - rec.get("probed", 0) >= PROBE_EVERY:
            rec["probed"] = now
            ready = self._probe(rec) if proxy is not None else self._ports_open(pod, rec)
            if ready != rec["ready"] or self._status_ready(pod) != ready:
                self._set_ready(pod, rec, ready)
                rec["ready"] = ready
                self._save(rec)
            self._endpoint(pod, rec)

    def _tend_istiod(self, pod, rec):
        """The istiod pod: Ready is kwok's (the supervisor's istiod serves it); forwarders follow that istiod's
        listeners (a restart may move them)."""
        istiod = self.w.istiod_for_pod(pod)
        if istiod is not None:
            want = {str(port): ["127.0.0.1", istiod["ports"][kind]] if kind != "webhook" else list(istiod["webhook"])
                    for port, kind in ISTIOD_POD_PORTS.items()}
            if want != rec.get("istiod_targets") or not all(procs.alive(p) for p in rec["procs"].values()):
                for p in rec["procs"].values():
                    procs.stop_group(p, timeout=2)
                rec["procs"] = {}
                self._istiod_pod_forwards(rec, istiod)
                log(f"{self.w.layout.context}: istiod pod {rec['namespace']}/{rec['name']}: forwarders restarted")
                self._save(rec)
        ready = self._status_ready(pod) and istiod is not None and procs.alive(istiod)
        if ready != rec["ready"]:
            rec["ready"] = ready
            self._save(rec)
        self._endpoint(pod, rec)

    def _probe(self, rec):
        import http.client  # pylint: disable=import-outside-toplevel

        def get():
            conn = http.client.HTTPConnection(rec["ip"], 15021, timeout=1)
            try:
                conn.request("GET", "/healthz/ready")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        try:
            return bool(podnet.call_in(rec["netns"], get, timeout=3))
        except (OSError, TimeoutError, http.client.HTTPException):
            return False

    def _ports_open(self, pod, rec):
        """A pod without a proxy is ready when its processes run and its declared ports accept connections."""
        import socket  # pylint: disable=import-outside-toplevel
        if not all(procs.alive(p) for p in rec["procs"].values()):
            return False
        ports = [p.container_port for c in app_containers(pod) for p in c.ports or [] if (p.protocol or "TCP") == "TCP"]

        def check():
            for port in ports:
                with socket.create_connection((rec["ip"], port), timeout=1):
                    pass
            return True
        try:
            return bool(podnet.call_in(rec["netns"], check, timeout=3))
        except (OSError, TimeoutError):
            return False

    def _logs(self, rec):
        """kubectl logs reads CRI-format files (`<time> stdout F <line>`): copy the containers' new output there."""
        offsets = rec.setdefault("log_offsets", {})
        for name in rec["procs"]:
            src = Path(rec["dir"], f"{name}.log")
            if not src.exists() or src.stat().st_size <= offsets.get(name, 0):
                continue
            with open(src, "rb") as f:
                f.seek(offsets.get(name, 0))
                data = f.read()
            lines = data.split(b"\n")
            rest = lines.pop()  # an unfinished line waits for the next tick
            offsets[name] = offsets.get(name, 0) + len(data) - len(rest)
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()).encode()
            with open(Path(rec["dir"], f"{name}.cri.log"), "ab") as out:
                for line in lines:
                    out.write(now + b" stdout F " + line + b"\n")

    @staticmethod
    def _status_ready(pod):
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    def _set_ready(self, pod, rec, ready):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = "True" if ready else "False"
        conds = [{"type": t, "status": status, "lastTransitionTime": now} for t in ("Ready", "ContainersReady")]
        statuses = [{"name": c.name, "ready": ready if c.name == PROXY else bool(ready or proxy_container(pod) is None),
                     "restartCount": rec["restarts"] if c.name == PROXY else 0,
                     "image": c.image, "imageID": "", "state": {"running": {"startedAt": now}}}
                    for c in pod.spec.containers or []]
        self.w.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace,
                                                {"status": {"conditions": conds, "containerStatuses": statuses}})

    def _addresses(self, pod, rec, services):
        want = sorted(self.w.lb_addresses_for(pod, services))
        if want != rec["extra_ips"]:
            podnet.set_extra_addresses(self.slot, rec["netns"], want, rec["extra_ips"])
            podnet.set_lb_backend(self.slot, rec["ip"], self._net_index(rec["network"]), want)
            log(f"{self.w.layout.context}: pod {rec['namespace']}/{rec['name']} owns {', '.join(want) or 'no'} "
                "LoadBalancer address(es)")
            rec["extra_ips"] = want
            self._save(rec)

    def _endpoint(self, pod, rec):
        """A WorkloadEntry standing for the pod's endpoint while it is Ready (what its EndpointSlice would say)."""
        name = f"meshlab-{pod.metadata.name}"[:253]
        ns = pod.metadata.namespace
        if not rec["ready"]:
            if rec.get("endpoint"):
                self._delete_endpoint(ns, name)
                rec["endpoint"] = None
            return
        labels = dict(pod.metadata.labels or {})
        labels.pop("pod-template-hash", None)
        # A pod's endpoint is plaintext unless its pod says otherwise (the injector labels sidecars `istio`), while
        # istiod takes a WorkloadEntry with a service account for an mTLS one: say what the pod's endpoint would.
        labels.setdefault(TLS_MODE_LABEL, "disabled")
        spec = {"address": rec["ip"], "labels": labels, "serviceAccount": pod.spec.service_account_name or "default"}
        if rec["network"]:
            spec["network"] = rec["network"]
        if rec["locality"]:
            spec["locality"] = rec["locality"]
        if rec.get("endpoint") == spec:
            return
        body = {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                "metadata": {"name": name, "namespace": ns,
                             "labels": {"app.kubernetes.io/managed-by": "meshlab", ENDPOINT_LABEL: pod.metadata.name}},
                "spec": spec}
        try:
            self.w.custom.create_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", body)
        except ApiException as e:
            if e.status == 404:
                return  # Istio's CRDs are not installed: a plain pod has no mesh endpoint to publish
            if e.status != 409:
                raise
            cur = self.w.custom.get_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", name)
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.w.custom.replace_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", name,
                                                           body)
        rec["endpoint"] = spec
        self._save(rec)

    def _delete_endpoint(self, ns, name):
        try:
            self.w.custom.delete_namespaced_custom_object("networking.istio.io", "v1", ns, "workloadentries", name)
        except ApiException as e:
            if e.status != 404:
                raise

    # ---- stop: SIGTERM now, the rest on later ticks, so one pod's drain does not hold up the others ----------
    def _stop(self, rec):
        # A pod being deleted leaves its Service's ready endpoints at once (EndpointSlice: ready false), before its
        # containers have stopped.
        if rec.get("endpoint"):
            try:
                self._delete_endpoint(rec["namespace"], f"meshlab-{rec['name']}"[:253])
                rec["endpoint"] = None
            except ApiException:  # the namespace may be gone with the pod: _remove tries again
                pass
        # A runtime ends a container's exec sessions with the container: the app containers stop at once (their
        # programs exit on SIGTERM), while istio-proxy drains; its own sessions go with the pod (_remove).
        self._kill_execs(rec, keep=PROXY)
        for p in rec["procs"].values():
            procs.term_group(p)
        rec["stop_deadline"] = time.monotonic() + 10
        self.stopping.append(rec)

    def _kill_execs(self, rec, keep=None):
        """SIGKILL the kubectl exec sessions (started by kwok through the podexec shim) running in the pod's
        namespace, those of container `keep` aside; each is known by the PATH the shim gives it."""
        ours = set()
        for p in rec["procs"].values():
            ours.update(procs.group_members(p["pid"]))
        for pid in podnet.pids_in(rec["netns"]):
            if pid in ours:
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            path = next((e[5:].decode(errors="replace") for e in environ if e.startswith(b"PATH=")), "")
            if not path.startswith(str(Path(rec["dir"], "bin")) + "/"):
                continue
            if keep and path.endswith("/" + keep):
                continue
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def _finish_stopping(self, force=False):
        for rec in list(self.stopping):
            left = any(procs.group_members(p["pid"]) for p in rec["procs"].values())
            if left and not force and time.monotonic() < rec["stop_deadline"]:
                continue
            for p in rec["procs"].values():
                procs.kill_group(p)
            self.stopping.remove(rec)
            self._remove(rec)

    def _stop_now(self, rec):
        for p in rec["procs"].values():
            procs.stop_group(p, timeout=2)
        self._remove(rec)

    def _remove(self, rec):
        self._kill_execs(rec)
        if rec["extra_ips"]:
            podnet.set_lb_backend(self.slot, rec["ip"], self._net_index(rec["network"]), [])
        podnet.delete(rec["netns"])
        if rec.get("endpoint"):
            try:
                self._delete_endpoint(rec["namespace"], f"meshlab-{rec['name']}"[:253])
            except ApiException:  # the namespace may be gone with the pod: nothing left to delete
                pass
        for plural in ("execs", "logs"):
            try:
                self.w.custom.delete_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", rec["namespace"], plural,
                                                              rec["name"])
            except ApiException:
                pass
        wd = Path(rec["dir"])
        # Keep the logs for a post-mortem; the pod's files (tokens, keys), commands and socket go.
        shutil.rmtree(rec["root"], ignore_errors=True)
        for sock in [".xds.sock"] + [f".{port}.sock" for port in ISTIOD_POD_PORTS]:
            Path(rec["root"] + sock).unlink(missing_ok=True)
        shutil.rmtree(wd / "bin", ignore_errors=True)
        for f in ("pod.json", "root"):
            (wd / f).unlink(missing_ok=True)
        log(f"{self.w.layout.context}: pod {rec['namespace']}/{rec['name']} stopped")


def _proxy_config(env):
    """The container's PROXY_CONFIG (JSON or YAML), as pilot-agent reads it."""
    try:
        return yaml.safe_load(env.get("PROXY_CONFIG") or "{}") or {}
    except yaml.YAMLError:
        return {}


def roots_dir(slot):
    """Where the pods' root directories are: not under the lab's home, which may sit in a directory only root can
    enter (pytest's), while the proxy runs as its own user and Envoy resolves its paths from /."""
    d = Path(tempfile.gettempdir()) / f"meshlab-pods-s{slot}"
    d.mkdir(mode=0o711, exist_ok=True)
    return d


def remove_roots(slot):
    shutil.rmtree(Path(tempfile.gettempdir()) / f"meshlab-pods-s{slot}", ignore_errors=True)


def _image_file(src, dest):
    """A file of the container image in the pod's root: a hard link to the lab's build (a copy across filesystems)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _quantity(raw):
    """A Kubernetes quantity in base units (CPU in millicores kept as fractions of 1)."""
    raw = str(raw)
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3,
                "Ti": 1024 ** 4}
    for s in sorted(suffixes, key=len, reverse=True):
        if raw.endswith(s):
            return float(raw[: -len(s)]) * suffixes[s]
    return float(raw)


def stop_leftovers(home: Path):
    """After a crash: stop the pod processes recorded under `home`, by their pids (and process groups)."""
    for f in home.glob("c*/pods/*/pod.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        for p in rec.get("procs", {}).values():
            if procs.alive(p) or procs.group_members(p["pid"]):
                procs.stop_group(p, timeout=5)


