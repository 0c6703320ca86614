"""kube-proxy for the API server (real data plane only): the one path from the root namespace to a LoadBalancer
address.

A remote's istiod Service (remote profile, `global.remotePilotAddress=<IP>`) has no selector; its EndpointSlice holds
the primary's east-west gateway address, a lab LoadBalancer address (198.19.x.y, layout.lb_address) that exists only
inside the lab's network namespaces. The remote's kube-apiserver calls the injection and validation webhooks (Service
istiod, port 443) by the Service's ClusterIP (its default service resolver; the lab enables no aggregator routing),
where on a node kube-proxy DNATs to the endpoint. Here, for each selectorless Service whose EndpointSlice addresses
are lab LoadBalancer addresses, and each of its ports, the supervisor runs

    socat TCP-LISTEN:<ClusterIP>:<port>  (root namespace; the ClusterIP is a 127.x address)
      -> UNIX socket ->
    socat in the router namespace (ml<slot>-net) -> TCP <endpoint>:<the EndpointSlice port of that port's name>

so the TCP connection to the LoadBalancer address is made inside the router, which routes it to the gateway pod's
network, and nothing in the root namespace dials outside loopback. Each pair is recorded in
<home>/c<N>/kube-proxy/<key>.json, replaced when the endpoint changes, stopped (by pid) when the Service or its
addresses go, when the supervisor stops, by `meshlab down`, and by the next `up` after a crash (stop_leftovers).
"""
import json
import time
from pathlib import Path

from kubernetes import client

from . import layout as lay, podnet, pods, procs

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class ServiceProxy:
    """One cluster's forwarders; `sync()` on every supervisor tick."""

    def __init__(self, watch):
        self.w = watch
        self.slot = watch.layout.slot
        self.dir = watch.dir / "kube-proxy"
        self.discovery = client.DiscoveryV1Api(watch.api)

    def wanted(self):
        """{key: {"listen": [ip, port], "target": [address, port], "service": "ns/name"}} for this cluster."""
        slices = {}
        for es in endpoint_slices(self.discovery):
            svc = (es["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc:
                slices.setdefault((es["metadata"]["namespace"], svc), []).append(es)
        want = {}
        for s in self.w.core.list_service_for_all_namespaces().items:
            ip = s.spec.cluster_ip
            if s.spec.selector or not ip or ip == "None" or s.spec.type not in (None, "ClusterIP"):
                continue
            for es in slices.get((s.metadata.namespace, s.metadata.name), []):
                addresses = [a for e in ready_endpoints(es) for a in e.get("addresses") or []
                             if lay.is_lb_address(self.slot, a)]
                if not addresses:
                    continue
                ports = {p.get("name") or "": p.get("port") for p in es.get("ports") or []
                         if p.get("protocol", "TCP") == "TCP"}
                for sp in s.spec.ports or []:
                    target = ports.get(sp.name or "")
                    if (sp.protocol or "TCP") != "TCP" or target is None:
                        continue
                    key = f"{s.metadata.namespace}.{s.metadata.name}.{sp.port}"
                    want.setdefault(key, {"listen": [ip, sp.port], "target": [addresses[0], target],
                                          "service": f"{s.metadata.namespace}/{s.metadata.name}"})
        return want

    def sync(self):
        want = self.wanted()
        have = self._records()
        for key, rec in have.items():
            spec = want.get(key)
            if spec is None or any(rec[k] != spec[k] for k in spec) or not all(procs.alive(p) for p in rec["procs"]):
                self._stop(key, rec)
                have[key] = None
        for key, spec in want.items():
            if have.get(key) is None:
                self._start(key, spec)

    def stop_all(self):
        for key, rec in self._records().items():
            self._stop(key, rec)

    def _records(self):
        found = {}
        for f in self.dir.glob("*.json"):
            try:
                found[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
        return found

    def _start(self, key, spec):
        self.dir.mkdir(exist_ok=True)
        (ip, port), (address, target) = spec["listen"], spec["target"]
        # Beside the pods' roots: a unix socket path must stay under 108 bytes, which the lab's home may not allow.
        sock = pods.roots_dir(self.slot) / f"kp-{ip}-{port}.sock"
        sock.unlink(missing_ok=True)
        logf = self.dir / f"{key}.log"
        name = f"{self.w.layout.context}/kube-proxy/{spec['service']}:{port}"
        inner = procs.spawn(f"{name}/router", ["ip", "netns", "exec", podnet.router(self.slot), "socat",
                                               f"UNIX-LISTEN:{sock},fork", f"TCP:{address}:{target}"], logf)
        outer = procs.spawn(f"{name}/listen", ["socat", f"TCP-LISTEN:{port},bind={ip},reuseaddr,fork",
                                               f"UNIX-CONNECT:{sock}"], logf)
        rec = dict(spec, procs=[inner, outer], sock=str(sock))
        (self.dir / f"{key}.json").write_text(json.dumps(rec))
        log(f"{self.w.layout.context}: kube-proxy for {spec['service']}: {ip}:{port} -> {address}:{target} "
            f"(through {podnet.router(self.slot)})")

    def _stop(self, key, rec):
        for p in rec["procs"]:
            procs.stop_group(p, timeout=5)   # socat's forked children (one per connection) too
        Path(rec["sock"]).unlink(missing_ok=True)
        (self.dir / f"{key}.json").unlink(missing_ok=True)
        log(f"{self.w.layout.context}: kube-proxy for {rec['service']}:{rec['listen'][1]} stopped")


def endpoint_slices(discovery, namespace=None, label_selector=None):
    """EndpointSlices as dicts: the Python client refuses to deserialize one without endpoints (`endpoints: null`,
    what a Service whose pods have loopback IPs gets), so the JSON is read as it comes."""
    kw = {"_preload_content": False}
    if label_selector:
        kw["label_selector"] = label_selector
    resp = (discovery.list_namespaced_endpoint_slice(namespace, **kw) if namespace
            else discovery.list_endpoint_slice_for_all_namespaces(**kw))
    return json.loads(resp.data)["items"]


def ready_endpoints(es):
    """The endpoints of an EndpointSlice dict that are not marked not ready (kube-proxy's choice)."""
    return [e for e in es.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False]


def records(home: Path):
    """The process records of every cluster's forwarders under `home` (for `meshlab down` and status)."""
    found = []
    for f in sorted(Path(home).glob("c*/kube-proxy/*.json")):
        try:
            found += json.loads(f.read_text())["procs"]
        except (OSError, ValueError, KeyError):
            continue
    return found


def stop_leftovers(home: Path):
    """After a crash of the supervisor: stop the forwarders recorded under `home`, by their pids."""
    for r in records(home):
        if procs.alive(r) or procs.group_members(r["pid"]):
            procs.stop_group(r, timeout=5)
