"""Real pods without Istio: the lab as container runtime and pod network. Istio's helloworld and curl sample images
run as real programs in their pods' network namespaces; kubectl exec and logs reach them; pods of one network
reach each other, other networks only through LoadBalancer addresses; a deleted pod and `meshlab down` leave no
process, namespace, mount or listening port behind. Tests run in file order on one lab."""
import json
import os
import re
import subprocess

import pytest

from meshlab import podnet, procs
from conftest import SLOT, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real pods need root (network namespaces, mounts)")

HELLO = """apiVersion: apps/v1
kind: Deployment
metadata: {name: helloworld-VER, labels: {app: helloworld, version: VER}}
spec:
  replicas: 1
  selector: {matchLabels: {app: helloworld, version: VER}}
  template:
    metadata: {labels: {app: helloworld, version: VER}}
    spec:
      containers:
      - {name: helloworld, image: docker.io/istio/examples-helloworld-VER:1.0, ports: [{containerPort: 5000}]}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld-VER}
spec:
  type: LoadBalancer
  selector: {app: helloworld, version: VER}
  ports: [{port: 5000, name: http}]
"""
CURL = """apiVersion: v1
kind: Pod
metadata: {name: curl, labels: {app: curl}}
spec:
  containers:
  - {name: curl, image: curlimages/curl, command: ["/bin/sleep", "infinity"]}
"""


def _real(lab, name_prefix, ctx=None):
    pods = [p for p in lab.lab.status()["real_pods"] if p["pod"].split("/", 1)[1].startswith(name_prefix)
            and (ctx is None or p["cluster"] == ctx)]
    return pods[0] if pods and pods[0]["ready"] else None


def _pod(lab, ctx, selector):
    return lab.kjson(ctx, "get", "pods", "-l", selector)["items"][0]


@pytest.fixture(scope="module")
def apps(lab):
    c1, c2 = lab.contexts
    # Two mesh networks: the lab's pod network follows each cluster's istio-system network label.
    for ctx, net in ((c1, "network1"), (c2, "network2")):
        lab.kubectl(ctx, "create", "namespace", "istio-system")
        lab.kubectl(ctx, "label", "namespace", "istio-system", f"topology.istio.io/network={net}")
    lab.kubectl(c1, "apply", "-f", "-", stdin=HELLO.replace("VER", "v1"))
    lab.kubectl(c2, "apply", "-f", "-", stdin=HELLO.replace("VER", "v2"))
    for ctx in (c1, c2):
        lab.kubectl(ctx, "apply", "-f", "-", stdin=CURL)
    for ctx, name in ((c1, "helloworld-v1"), (c2, "helloworld-v2"), (c1, "curl"), (c2, "curl")):
        wait_for(f"{name} running for real in {ctx}",
                 lambda n=name, i=lab.contexts.index(ctx): _real(lab, n, f"c{i + 1}"), timeout=60)
    return {"v1": _pod(lab, c1, "version=v1"), "v2": _pod(lab, c2, "version=v2")}


def _curl(lab, ctx, url, check=True):
    return lab.kubectl(ctx, "exec", "curl", "--", "curl", "-sS", "--max-time", "3", url, check=check)


def test_status_lists_the_real_pods_and_they_are_ready(lab, apps):
    real = lab.lab.status()["real_pods"]
    want = [("c1", "default/curl"), ("c2", "default/curl"), ("c1", f"default/{apps['v1']['metadata']['name']}"),
            ("c2", f"default/{apps['v2']['metadata']['name']}")]
    assert sorted((p["cluster"], p["pod"]) for p in real) == sorted(want)
    assert {p["network"] for p in real} == {"network1", "network2"}
    assert all(p["ready"] for p in real)
    pod = lab.kjson(lab.contexts[0], "get", "pod", apps["v1"]["metadata"]["name"])
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"


def test_exec_runs_in_the_pod_and_reaches_a_pod_of_its_network(lab, apps):
    ip = apps["v1"]["status"]["podIP"]
    out = _curl(lab, lab.contexts[0], f"http://{ip}:5000/hello").stdout
    assert out == f"Hello version: v1, instance: {apps['v1']['metadata']['name']}\n"
    # The pod's own files, as the kubelet mounts them, not the machine's.
    assert lab.kubectl(lab.contexts[0], "exec", "curl", "--", "cat", "/etc/hostname").stdout == "curl\n"
    assert "curl" in lab.kubectl(lab.contexts[0], "exec", "curl", "--", "cat", "/etc/hosts").stdout.split()


def test_exec_of_a_command_the_image_lacks_fails_as_in_a_container(lab, apps):
    proc = lab.kubectl(lab.contexts[0], "exec", "curl", "--", "iptables", "-L", check=False)
    assert proc.returncode != 0
    assert "executable file not found" in proc.stderr


def test_other_network_only_through_its_load_balancer(lab, apps):
    c1, c2 = lab.contexts
    ip = apps["v1"]["status"]["podIP"]
    direct = _curl(lab, c2, f"http://{ip}:5000/hello", check=False)
    assert direct.returncode != 0, f"network2 reached a network1 pod IP directly: {direct.stdout}"
    lb = wait_for("helloworld-v1 LoadBalancer", lambda: (lab.kjson(c1, "get", "svc", "helloworld-v1")["status"]
                                                         .get("loadBalancer", {}).get("ingress")))[0]["ip"]
    out = wait_for("the LB address owned by the pod", lambda: _curl(lab, c2, f"http://{lb}:5000/hello",
                                                                    check=False).stdout)
    assert out.startswith("Hello version: v1, instance: ")


def test_logs_of_a_real_container(lab, apps):
    name = apps["v1"]["metadata"]["name"]
    logs = lab.kubectl(lab.contexts[0], "logs", name, "-c", "helloworld").stdout
    assert "GET /hello" in logs


def test_proxy_of_an_istio_version_the_lab_lacks_gets_an_event_and_no_process(lab, apps):
    c1 = lab.contexts[0]
    pod = """apiVersion: v1
kind: Pod
metadata: {name: odd-proxy, annotations: {sidecar.istio.io/status: '{}'}}
spec:
  containers:
  - {name: istio-proxy, image: docker.io/istio/proxyv2:9.9.9, args: [proxy, sidecar]}
"""
    lab.kubectl(c1, "apply", "-f", "-", stdin=pod)
    events = wait_for("the MeshlabPodFailed event", lambda: [
        e for e in lab.kjson(c1, "get", "events", "--field-selector", "involvedObject.name=odd-proxy")["items"]
        if e["reason"] == "MeshlabPodFailed"])
    assert "9.9.9" in events[0]["message"] and "1.30.3" in events[0]["message"], events[0]["message"]
    assert not [p for p in lab.lab.real_pods() if p["name"] == "odd-proxy"]
    status = lab.kjson(c1, "get", "pod", "odd-proxy")["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False", "no proxy, so never Ready"
    lab.kubectl(c1, "delete", "pod", "odd-proxy", "--wait=true")


def test_a_rollout_behind_a_load_balancer_loses_no_request(lab, apps):
    """As a cloud load balancer with connection draining: while helloworld-v1 is replaced, every request from the
    other network through its LoadBalancer address is answered, first by the old pod, then by the new one; afterwards
    new connections go to the new pod only (one router rule, with its mark)."""
    c1, c2 = lab.contexts
    lb = lab.kjson(c1, "get", "svc", "helloworld-v1")["status"]["loadBalancer"]["ingress"][0]["ip"]
    old = apps["v1"]["metadata"]["name"]
    loop = subprocess.Popen(["kubectl", "--context", c2, "exec", "curl", "--", "sh", "-c",
                             f"for i in $(seq 1 80); do curl -sS --max-time 5 http://{lb}:5000/hello || echo FAIL; sleep 0.25; done"],
                            env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lab.kubectl(c1, "rollout", "restart", "deployment", "helloworld-v1")
    lab.kubectl(c1, "rollout", "status", "deployment", "helloworld-v1", "--timeout=90s")
    out = loop.communicate(timeout=150)[0]
    lines = out.splitlines()
    assert len(lines) == 80 and all(line.startswith("Hello version: v1, instance: ") for line in lines), out
    names = [line.rsplit(" ", 1)[1] for line in lines]
    new = [n for n in dict.fromkeys(names) if n != old]
    assert names[0] == old and len(new) == 1 and names[-1] == new[0], names
    pod = [p for p in lab.kjson(c1, "get", "pods", "-l", "version=v1")["items"] if p["metadata"]["name"] == new[0]][0]
    router, mark = podnet.router(lab.lab.state()["slot"]), "--set-xmark %#x/" % podnet.lb_mark(pod["status"]["podIP"])

    def new_pod_only():
        rules = [r for r in subprocess.run(["ip", "netns", "exec", router, "iptables", "-t", "mangle", "-S", podnet.LB_CHAIN],
                                           capture_output=True, text=True, check=True).stdout.splitlines() if f"-d {lb}/32 " in r]
        return rules if len(rules) == 1 and mark in rules[0] else None

    wait_for("new connections to the new pod only", new_pod_only, timeout=30)
    apps["v1"] = pod


def test_deleted_pod_leaves_nothing(lab, apps):
    c1 = lab.contexts[0]
    before = [p for p in lab.lab.real_pods() if p["name"] == "curl" and p["cluster"] == "c1"][0]
    lab.kubectl(c1, "delete", "pod", "curl", "--wait=true")
    wait_for("curl's processes gone", lambda: not any(procs.group_members(p["pid"]) for p in before["procs"].values()),
             timeout=20)
    wait_for("curl's namespace gone", lambda: before["netns"] not in podnet.lab_namespaces(lab.lab.state()["slot"]))
    # The record goes last, after the namespace and an API call for the pod's endpoint.
    wait_for("curl's record gone", lambda: not [p for p in lab.lab.real_pods()
                                                if p["name"] == "curl" and p["cluster"] == "c1"], timeout=20)


def test_down_leaves_no_process_namespace_mount_or_port(lab, apps):
    slot = lab.lab.state()["slot"]
    recs = lab.lab.records()
    pids = [r["pid"] for r in recs]
    assert podnet.lab_namespaces(slot), "the running lab has namespaces"
    lab.lab.down(keep=True)
    assert not [r["name"] for r in recs if procs.alive(r)]
    assert not [p for p in pids if procs.group_members(p)]
    assert podnet.lab_namespaces(slot) == []
    mounts = open("/proc/mounts", encoding="utf-8").read()
    assert f"/run/netns/ml{slot}-" not in mounts
    assert procs.listening_ports(pids) == []
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    ours = [a["ifname"] for a in json.loads(out) if re.fullmatch(r"v[0-9a-f]{10}|b\d+|eth0@.*", a["ifname"])]
    assert ours == [], "no interface of the lab in the root namespace"


def test_up_removes_what_a_crashed_lab_left(lab, apps):
    slot = SLOT
    stale = f"ml{slot}-pstale00000"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        lab.lab.up(count=1, slot=slot)
        assert stale not in podnet.lab_namespaces(slot)
    finally:
        lab.lab.down(keep=True)
        subprocess.run(["ip", "netns", "del", stale], check=False, capture_output=True)
