"""meshlab end to end, with real processes: clusters, kwok pods, load balancers, real istiods, remote secrets,
injection, validation, the audit write count, and a clean `down`. Tests run in file order on one lab."""
import ipaddress
import json
import time
import urllib.request

from meshlab import paths, procs
from conftest import wait_for


def test_up_gives_reachable_clusters_with_one_node_each(lab):
    assert len(lab.contexts) == 2
    for i, ctx in enumerate(lab.contexts, start=1):
        nodes = lab.kjson(ctx, "get", "nodes")["items"]
        assert [n["metadata"]["labels"]["topology.kubernetes.io/region"] for n in nodes] == [f"region{i}"]
        version = json.loads(lab.kubectl(ctx, "version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        assert version == "v1.34.2"
    st = lab.lab.status()
    assert st["processes"] and all(p["alive"] for p in st["processes"])


def test_service_and_pod_ranges_are_loopback(lab):
    ctx = lab.contexts[0]
    ip = lab.kjson(ctx, "get", "svc", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip).is_loopback


def test_deployment_gets_ready_pods(lab):
    ctx = lab.contexts[0]
    lab.kubectl(ctx, "create", "deployment", "web", "--image=registry.invalid/web:1", "--replicas=2")
    dep = wait_for("web ready", lambda: (lambda d: d if d["status"].get("readyReplicas") == 2 else None)(
        lab.kjson(ctx, "get", "deploy", "web")))
    assert dep["status"]["availableReplicas"] == 2
    pods = lab.kjson(ctx, "get", "pods", "-l", "app=web")["items"]
    assert all(ipaddress.ip_address(p["status"]["podIP"]).is_loopback for p in pods)


def test_load_balancer_service_gets_an_address_of_its_clusters_range(lab):
    """Not loopback (EndpointSlices refuse it, and a remote's istiod Service needs its primary's gateway address
    in one): the cluster's own /24 of 198.19.0.0/16, which exists only inside the lab's network namespaces."""
    addresses = []
    for ctx in lab.contexts:
        lab.kubectl(ctx, "create", "service", "loadbalancer", "lb", "--tcp=80:80")
        svc = wait_for("lb address", lambda: (lambda s: s if s["status"].get("loadBalancer", {}).get("ingress") else None)(
            lab.kjson(ctx, "get", "svc", "lb")), timeout=15)
        ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        c = lab.lab.clusters()[lab.contexts.index(ctx)]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(c.lb_cidr), (ip, c.lb_cidr)
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("198.19.0.0/16")
        addresses.append(ip)
    assert len(set(addresses)) == 2, "each cluster hands out its own addresses"


def _install_istiod(lab, ctx, cluster_id, network):
    lab.kubectl(ctx, "create", "namespace", "istio-system")
    lab.kubectl(ctx, "label", "namespace", "istio-system", f"topology.istio.io/network={network}")
    lab.helm(ctx, "install", "istio-base", str(paths.charts_dir() / "base"), "-n", "istio-system",
             "--set", "defaultRevision=default")
    lab.helm(ctx, "install", "istiod", str(paths.charts_dir() / "istio-control" / "istio-discovery"), "-n", "istio-system",
             "--wait", "--timeout", "90s", "--set", "global.meshID=mesh1",
             "--set", f"global.multiCluster.clusterName={cluster_id}", "--set", f"global.network={network}")


def _clusterz(rec):
    """istiod's cluster list; [] while the process is still starting (the supervisor records it before it listens)."""
    url = f"http://127.0.0.1:{rec['ports']['monitoring']}/debug/clusterz"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except OSError:  # connection refused until istiod opens its monitoring port
        return []


def test_helm_installed_istiod_runs_for_real(lab):
    for i, ctx in enumerate(lab.contexts, start=1):
        _install_istiod(lab, ctx, f"cluster{i}", f"network{i}")
    for i, ctx in enumerate(lab.contexts, start=1):
        rec = lab.istiod(ctx)
        assert rec["cluster_id"] == f"cluster{i}"
        rows = wait_for("own cluster synced", lambda: [r for r in _clusterz(rec) if r["syncStatus"] == "synced"])
        assert rows[0]["id"] == f"cluster{i}" and rows[0]["secretName"] == ""


def test_port_forward_reaches_istiod(lab):
    ctx = lab.contexts[0]
    pod = lab.kjson(ctx, "get", "pods", "-n", "istio-system", "-l", "app=istiod")["items"][0]["metadata"]["name"]
    # The Python client's port-forward, as the collection's status module uses it.
    from kubernetes import client, config
    from kubernetes.stream import portforward
    api = client.CoreV1Api(config.new_client_from_config(str(lab.lab.kubeconfig()), context=ctx))
    pf = wait_for("port-forward", lambda: _try_pf(api, portforward, pod), timeout=20)
    assert b'"id": "cluster1"' in pf or b'"id":"cluster1"' in pf


def _try_pf(api, portforward, pod):
    try:
        pf = portforward(api.connect_get_namespaced_pod_portforward, pod, "istio-system", ports="15014")
        sock = pf.socket(15014)
        sock.settimeout(10)
        sock.sendall(b"GET /debug/clusterz HTTP/1.0\r\nHost: istiod\r\n\r\n")
        data = b""
        # A port-forward stream does not report the end of the connection: stop at the end of the JSON body.
        while not data.rstrip().endswith(b"]"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        pf.close()
        return data if b"200 OK" in data else None
    except Exception:  # the PortForward object may not be there yet
        return None


def test_remote_secrets_both_ways_sync(lab):
    c1, c2 = lab.contexts
    for src, dst, cid in ((c2, c1, "cluster2"), (c1, c2, "cluster1")):
        secret = lab.run("istioctl", "create-remote-secret", "--context", src, "--name", cid).stdout
        lab.kubectl(dst, "apply", "-f", "-", stdin=secret)
    for ctx, other in ((c1, "cluster2"), (c2, "cluster1")):
        out = wait_for(f"{ctx} sees {other} synced", lambda: (lambda o: o if f"istio-remote-secret-{other}" in o and
                                                                 "synced" in o.split(other, 2)[-1] else None)(
            lab.run("istioctl", "--context", ctx, "remote-clusters").stdout), timeout=60)
        row = next(line for line in out.splitlines() if line.startswith(other))
        assert row.split()[2] == "synced", out


def test_injection_and_validation_are_real(lab):
    ctx = lab.contexts[0]
    lab.kubectl(ctx, "create", "namespace", "sample")
    lab.kubectl(ctx, "label", "namespace", "sample", "istio-injection=enabled")
    lab.kubectl(ctx, "-n", "sample", "run", "curl", "--image=registry.invalid/curl:1")
    pod = lab.kjson(ctx, "-n", "sample", "get", "pod", "curl")
    assert "istio-proxy" in [c["name"] for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])]
    bad = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bad, namespace: sample}\n"
           "spec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n"
           "    hosts: []\n")
    proc = lab.kubectl(ctx, "apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode != 0 and "validation.istio.io" in proc.stderr, proc.stderr


def test_cacerts_change_restarts_istiod(lab):
    ctx = lab.contexts[1]
    before = lab.istiod(ctx)
    lab.kubectl(ctx, "-n", "istio-system", "create", "secret", "generic", "cacerts", "--from-literal=unrelated=1")
    after = wait_for("restart", lambda: (lambda r: r if r["pid"] != before["pid"] else None)(lab.istiod(ctx)), timeout=20)
    assert not procs.alive(before) and procs.alive(after)
    lab.kubectl(ctx, "-n", "istio-system", "delete", "secret", "cacerts")


def test_writes_counts_admin_writes(lab):
    from meshlab import audit
    c1, c2 = lab.contexts
    mark = lab.run("meshlab", "--home", str(lab.lab.home), "mark").stdout.strip()
    for n in range(3):
        lab.kubectl(c1, "create", "configmap", f"w{n}")
    lab.kubectl(c1, "delete", "configmap", "w0")
    lab.kubectl(c2, "get", "configmaps")  # a read is not a write
    time.sleep(0.5)
    counts = json.loads(lab.run("meshlab", "--home", str(lab.lab.home), "writes", "--since", mark, "--json").stdout)
    assert counts == {c1: 4, c2: 0}
    assert audit.writes(lab.lab.home / "c1" / "audit.log", "lab-admin", mark) == 4
    objects = json.loads(lab.run("meshlab", "--home", str(lab.lab.home), "writes", "--since", mark, "--objects").stdout)
    assert sorted((w["verb"], w["resource"], w["namespace"], w["name"]) for w in objects[c1]) == sorted(
        [("create", "configmaps", "default", f"w{n}") for n in range(3)] + [("delete", "configmaps", "default", "w0")])
    assert objects[c2] == []


def test_istiod_stops_when_its_deployment_goes(lab):
    ctx = lab.contexts[1]
    rec = lab.istiod(ctx)
    lab.helm(ctx, "uninstall", "istiod", "-n", "istio-system", "--wait")
    wait_for("istiod stopped", lambda: not procs.alive(rec), timeout=20)


def test_down_leaves_no_process_and_no_port(lab):
    recs = lab.lab.records()
    pids = [r["pid"] for r in recs]
    assert procs.listening_ports(pids), "the lab was listening before down"
    lab.lab.down(keep=True)
    assert not any(procs.alive(r) for r in recs)
    for c in lab.lab.clusters():
        for p in c.fixed_ports():
            assert not procs.port_in_use("127.0.0.1", p), f"port {p} still in use"
    lab.lab.state_file.unlink()
