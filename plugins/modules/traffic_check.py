#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: traffic_check
short_description: Curl a mesh service from a client pod until every expected version answers (Istio's helloworld check)
version_added: 0.3.0
description:
  - Istio's "Verify the installation" step for one cluster. Runs rounds of O(requests) requests to
    C(http://<service>.<namespace>:<port><path>) with C(curl) inside a Running client pod (C(kubectl exec)), until
    one round is answered by every version in O(expect_versions) (helloworld answers C(Hello version) then the
    version, C(v1)), or O(timeout) passes.
  - On failure, names the likely cause it can see from this cluster, reading the client sidecar's endpoints of the
    service (C(pilot-agent request GET clusters) in its C(istio-proxy) container) and the errors the requests got
    (no endpoint outside this cluster; an endpoint or another network's east-west gateway unreachable; TLS handshake
    failures, told apart from an unreachable endpoint by a TCP connection from the sidecar's container).
  - Writes nothing. The samples are deployed and removed by the caller (the C(verify) role).
author:
  - meshops.istio maintainers (@meshops)
extends_documentation_fragment:
  - meshops.istio.k8s_auth_options
  - meshops.istio.attributes.READ_ONLY
options:
  namespace:
    description: The samples' namespace.
    type: str
    required: true
  service:
    description: The Service to request; its pods carry the label C(app=<service>).
    type: str
    default: helloworld
  port:
    description: The Service port.
    type: int
    default: 5000
  path:
    description: The HTTP path.
    type: str
    default: /hello
  client_selector:
    description: Label selector of the client pod.
    type: str
    default: app=curl
  client_container:
    description: The client pod's container with C(curl).
    type: str
    default: curl
  expect_versions:
    description: Versions (C(Hello version) values) one round must all contain.
    type: list
    elements: str
    default: [v1, v2]
  requests:
    description: Requests per round.
    type: int
    default: 20
  timeout:
    description: Seconds to keep trying (endpoints of other clusters reach the proxies seconds after the pods are Ready).
    type: int
    default: 90
  cluster:
    description: The cluster's name in messages. Default O(context).
    type: str
  gateways:
    description: Other networks' east-west gateways, to tell an unreachable gateway apart from missing endpoints.
    type: list
    elements: dict
    default: []
    suboptions:
      network:
        description: The gateway's network.
        type: str
        required: true
      address:
        description: The gateway's address.
        type: str
        required: true
      port:
        description: The gateway's port (15443 for sidecars when unset).
        type: int
"""

EXAMPLES = r"""
- name: Curl helloworld from cluster1 until v1 and v2 answer
  meshops.istio.traffic_check:
    context: cluster1
    namespace: sample
    gateways:
      - {network: network2, address: 203.0.113.20}
  register: traffic

- name: Show the answers
  ansible.builtin.debug:
    msg: "{{ traffic.summary }}"
"""

RETURN = r"""
answers:
  description: Answers per version in the last round.
  returned: always
  type: dict
  sample: {v1: 11, v2: 9}
rounds:
  description: Rounds run.
  returned: always
  type: int
seconds:
  description: Seconds until the check passed or gave up.
  returned: always
  type: float
client:
  description: The client pod (namespace/name).
  returned: always
  type: str
summary:
  description: One line of what the cluster got.
  returned: always
  type: str
  sample: "cluster1: 20 requests answered by v1 x11, v2 x9"
causes:
  description: Likely causes of a failure, as seen from this cluster (empty on success).
  returned: always
  type: list
  elements: str
endpoints:
  description: The client sidecar's endpoints of the service (address:port), read on failure (empty without a sidecar).
  returned: always
  type: list
  elements: str
"""

import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshops.istio.plugins.module_utils import kube, traffic

try:
    from kubernetes.stream import stream
except ImportError:
    stream = None  # reported by AnsibleK8SModule's requires("kubernetes")

PROXY_CONTAINER = "istio-proxy"


def run_in(core, pod, container, command):
    return stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, pod.metadata.namespace, container=container,
                  command=command, stderr=True, stdout=True, stdin=False, tty=False) or ""


def client_pod(core, p):
    pods = [x for x in core.list_namespaced_pod(p["namespace"], label_selector=p["client_selector"]).items
            if x.status.phase == "Running" and not x.metadata.deletion_timestamp]
    return sorted(pods, key=lambda x: x.metadata.name)[0] if pods else None


def look_closer(core, pod, p):
    """The client sidecar's endpoints of the service, this cluster's own pod IPs of it, and whether a TCP connection
    opens to each failing endpoint outside this cluster (tells an unreachable gateway from a failed TLS handshake)."""
    local = [x.status.pod_ip for x in core.list_namespaced_pod(p["namespace"], label_selector="app=%s" % p["service"]).items
             if x.status.pod_ip]
    if PROXY_CONTAINER not in [c.name for c in pod.spec.containers]:
        return {}, local, {}
    text = run_in(core, pod, PROXY_CONTAINER, ["pilot-agent", "request", "GET", "clusters"])
    eps = traffic.endpoints(text, traffic.service_cluster(p["service"], p["namespace"], p["port"]))
    reachable = {}
    for endpoint in traffic.failing_remote(eps, local):
        try:
            reachable[endpoint] = traffic.tcp_reachable(run_in(core, pod, PROXY_CONTAINER, ["sh", "-c", traffic.tcp_probe_script(endpoint)]))
        except Exception:  # a proxy image without a shell or curl (distroless): unknown
            reachable[endpoint] = None
    return eps, local, reachable


def main():
    spec = kube.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", required=True),
        service=dict(type="str", default="helloworld"),
        port=dict(type="int", default=5000),
        path=dict(type="str", default="/hello"),
        client_selector=dict(type="str", default="app=curl"),
        client_container=dict(type="str", default="curl"),
        expect_versions=dict(type="list", elements="str", default=["v1", "v2"]),
        requests=dict(type="int", default=20),
        timeout=dict(type="int", default=90),
        cluster=dict(type="str"),
        gateways=dict(type="list", elements="dict", default=[], options=dict(
            network=dict(type="str", required=True), address=dict(type="str", required=True), port=dict(type="int"))),
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    name = p["cluster"] or p["context"] or "cluster"
    if p["requests"] < 1 or p["timeout"] < 0 or not p["expect_versions"]:
        module.fail_json(msg="%s: requests must be at least 1, timeout at least 0 and expect_versions not empty" % name)
    core = kube.Kube(label=name, **kube.auth_from_params(p)).core()
    url = "http://%s.%s:%d%s" % (p["service"], p["namespace"], p["port"], p["path"])
    script = traffic.curl_script(url, p["requests"])
    start = time.time()
    result = dict(changed=False, answers={}, rounds=0, client="", causes=[], endpoints=[])
    pod, output = None, ""
    while True:
        pod = pod or client_pod(core, p)
        if pod is not None:
            result["client"] = "%s/%s" % (pod.metadata.namespace, pod.metadata.name)
            output = run_in(core, pod, p["client_container"], ["sh", "-c", script])
            result["rounds"] += 1
            result["answers"] = traffic.answers(output)
            if all(result["answers"].get(v) for v in p["expect_versions"]):
                break
        if time.time() - start >= p["timeout"]:
            break
        time.sleep(2)
    result["seconds"] = round(time.time() - start, 1)
    result["summary"] = traffic.summary(name, result["answers"], p["expect_versions"], p["requests"])
    if pod is None:
        why = "%s: no Running pod %s in namespace %s after %ss" % (name, p["client_selector"], p["namespace"], p["timeout"])
        module.fail_json(msg=why, **result)
    missing = [v for v in p["expect_versions"] if not result["answers"].get(v)]
    if missing:
        eps, local, reachable = look_closer(core, pod, p)
        result["endpoints"] = sorted(eps)
        result["causes"] = traffic.diagnose(name, missing, output, eps, local, p["gateways"], reachable)
        module.fail_json(msg="%s after %ss; likely cause: %s" % (result["summary"], result["seconds"], "; ".join(result["causes"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
