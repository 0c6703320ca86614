"""meshlab data-plane benchmark (prints figures; not a test), on Istio 1.30.3 installed with its Helm charts:
- seconds from `kubectl apply` of an injected Deployment to its real pod Ready (pilot-agent + Envoy up, 15021 ready),
- resident memory per proxy (pilot-agent and its Envoy) and per sample app,
- 2 clusters with 8 real pods (4 each): seconds until all are Ready,
- requests per second through one sidecar pair (curl -> client sidecar -> server sidecar -> helloworld), one
  keep-alive connection, sequential requests.
"""
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from meshlab import lab as labmod, paths, procs

RELEASE = "1.30.3"


class Bench:
    def __init__(self, lb):
        self.lb = lb
        self.env = dict(os.environ, KUBECONFIG=str(lb.kubeconfig()),
                        PATH=f"{paths.istio_dir(RELEASE) / 'bin'}:" + ":".join(paths.bin_dirs()) + ":" + os.environ["PATH"])

    def sh(self, *cmd, stdin=None):
        return subprocess.run(list(cmd), env=self.env, input=stdin, capture_output=True, text=True, check=True,
                              timeout=300).stdout

    def k(self, ctx, *args, stdin=None):
        return self.sh("kubectl", "--context", ctx, *args, stdin=stdin)

    def install(self, ctx, cluster, network):
        charts = paths.charts_dir(RELEASE)
        self.k(ctx, "create", "namespace", "istio-system")
        self.k(ctx, "label", "namespace", "istio-system", f"topology.istio.io/network={network}")
        self.sh("helm", "--kube-context", ctx, "install", "istio-base", str(charts / "base"), "-n", "istio-system")
        self.sh("helm", "--kube-context", ctx, "install", "istiod", str(charts / "istio-control" / "istio-discovery"),
                "-n", "istio-system", "--wait", "--set", "global.meshID=mesh1",
                "--set", f"global.multiCluster.clusterName={cluster}", "--set", f"global.network={network}")
        self.k(ctx, "create", "namespace", "sample")
        self.k(ctx, "label", "namespace", "sample", "istio-injection=enabled")
        # The injector writes the CA root ConfigMap into the namespace; pods mount it.
        deadline = time.monotonic() + 60
        while "istio-ca-root-cert" not in self.k(ctx, "get", "configmap", "-n", "sample", "-o", "name"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ctx}: no istio-ca-root-cert in sample")
            time.sleep(0.2)

    def wait_ready(self, ctx, selector, count):
        t0 = time.monotonic()
        while True:
            pods = json.loads(self.k(ctx, "get", "pods", "-n", "sample", "-l", selector, "-o", "json"))["items"]
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in p["status"].get("conditions", []))]
            if len(ready) >= count:
                return time.monotonic() - t0
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"{ctx}: {len(ready)}/{count} pods {selector} Ready after 180 s")
            time.sleep(0.1)


def main():
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB; Istio {RELEASE}, Envoy "
          f"{paths.envoy_binary(RELEASE).parent.parent.name}")
    slot = int(os.environ.get("MESHLAB_SLOT", "2"))
    samples = paths.samples_dir(RELEASE)
    with tempfile.TemporaryDirectory() as home:
        lb = labmod.Lab(Path(home) / "lab")
        lb.up(count=2, slot=slot, out=open(os.devnull, "w"), dataplane="real")
        try:
            b = Bench(lb)
            c1, c2 = [c.context for c in lb.clusters()]
            for i, ctx in enumerate((c1, c2), start=1):
                b.install(ctx, f"cluster{i}", "network1")
            hello = str(samples / "helloworld" / "helloworld.yaml")
            b.k(c1, "apply", "-n", "sample", "-f", hello, "-l", "service=helloworld")
            t0 = time.monotonic()
            b.k(c1, "apply", "-n", "sample", "-f", hello, "-l", "version=v1")
            b.wait_ready(c1, "app=helloworld", 1)
            print(f"apply -> Ready, one injected helloworld pod: {time.monotonic() - t0:.1f} s")
            b.k(c1, "apply", "-n", "sample", "-f", str(samples / "curl" / "curl.yaml"))
            b.wait_ready(c1, "app=curl", 1)
            time.sleep(3)  # idle, before reading memory
            for pod in lb.real_pods():
                agent = pod["procs"].get("istio-proxy")
                if agent is None:
                    continue
                group = procs.group_members(agent["pid"])
                envoy = sum(procs.rss_kib(p) for p in group if p != agent["pid"])
                apps = {k: procs.rss_kib(v["pid"]) for k, v in pod["procs"].items() if k not in ("istio-proxy", "xds-in", "xds-out")}
                print(f"  {pod['name']:40} pilot-agent {procs.rss_kib(agent['pid']) / 1024:.0f} MiB, Envoy "
                      f"{envoy / 1024:.0f} MiB, socat {sum(procs.rss_kib(pod['procs'][k]['pid']) for k in ('xds-in', 'xds-out')) / 1024:.0f} MiB"
                      + "".join(f", {k} {v / 1024:.0f} MiB" for k, v in apps.items()))
            n = 2000
            out = b.k(c1, "exec", "-n", "sample", "deploy/curl", "-c", "curl", "--", "curl", "-s", "-o", "/dev/null",
                      "-w", "%{http_code}\\n", f"http://helloworld.sample:5000/hello?[1-{n}]")
            t0 = time.monotonic()
            out = b.k(c1, "exec", "-n", "sample", "deploy/curl", "-c", "curl", "--", "curl", "-s", "-o", "/dev/null",
                      "-w", "%{http_code}\\n", f"http://helloworld.sample:5000/hello?[1-{n}]")
            secs = time.monotonic() - t0
            ok = out.split().count("200")
            print(f"one sidecar pair: {n} sequential requests on one connection in {secs:.2f} s = {n / secs:.0f} rps "
                  f"({ok} answered 200; includes kubectl exec's own ~0.3 s)")
            t0 = time.monotonic()
            b.k(c1, "scale", "-n", "sample", "deploy/helloworld-v1", "--replicas=3")
            b.k(c2, "apply", "-n", "sample", "-f", hello, "-l", "service=helloworld")
            b.k(c2, "apply", "-n", "sample", "-f", hello, "-l", "version=v2")
            b.k(c2, "scale", "-n", "sample", "deploy/helloworld-v2", "--replicas=3")
            b.k(c2, "apply", "-n", "sample", "-f", str(samples / "curl" / "curl.yaml"))
            b.wait_ready(c1, "app=helloworld", 3)
            b.wait_ready(c2, "app", 4)
            print(f"2 clusters with 8 real pods: 6 new pods Ready {time.monotonic() - t0:.1f} s after the apply; "
                  f"{len(lb.real_pods())} real pods, resident memory of their processes "
                  f"{sum(procs.rss_kib(p) for pod in lb.real_pods() for r in pod['procs'].values() for p in procs.group_members(r['pid'])) / 1024:.0f} MiB")
        finally:
            lb.down(out=open(os.devnull, "w"))


if __name__ == "__main__":
    main()
