"""The pod network of a lab: network namespaces for real pods, joined by one router namespace per slot.

    ml<slot>-net      the router: one bridge per mesh network (b<N>, address 127.254.<slot>.<N>); it forwards
                      between pods of one network, and from any network only to LoadBalancer addresses (each
                      cluster's /24 of 198.19.0.0/16, routed to its network's bridge), which is what a cluster network
                      without pod-to-pod routes between networks gives (east-west gateways are the only way across)
    ml<slot>-p<hash>  one pod: eth0 (a veth whose peer sits on its network's bridge) with the pod IP and any
                      LoadBalancer address the pod owns; lo keeps 127.0.0.1/32 and 127.0.0.6/32 only, so the rest
                      of 127/8 leaves through eth0, and so does 198.18.0.0/15 (LoadBalancer addresses)

Pod IPs and the router's addresses are in 127.0.0.0/8. LoadBalancer addresses (layout.lb_address) are in
198.19.0.0/16 and exist only here: on the eth0 of the gateway pod that owns one, routed by the router; with
simulated pods they exist nowhere, and nothing in the root namespace dials them. 198.18.0.1 on a pod's lo never
leaves it (istio-iptables needs one non-loopback address to tell IPv4 from IPv6; a local address wins over the
pod's 198.18.0.0/15 route). The root namespace gets no interface, route or iptables rule. Namespaces are named with
the slot, so labs in other slots never touch them.
"""
import ctypes
import hashlib
import os
import shutil
import subprocess
import threading

from . import layout as lay

CLONE_NEWNET = 0x40000000
LOCAL_ONLY_V4 = "198.18.0.1"
LB_RANGE = "198.18.0.0/15"   # where every slot's LoadBalancer addresses are (layout.lb_address)


class NetError(RuntimeError):
    pass


def _run(*argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def missing_tools():
    """The programs the pod network needs that this machine lacks (bindep.txt installs them)."""
    return [t for t in ("ip", "iptables", "socat", "setpriv") if shutil.which(t) is None]


def router(slot):
    return f"ml{slot}-net"


def pod_netns(slot, pod_uid):
    digest = hashlib.sha256(pod_uid.encode()).hexdigest()[:10]
    return f"ml{slot}-p{digest}"


def leg_address(slot, net_index):
    return f"127.254.{slot}.{net_index}"


def lab_namespaces(slot):
    """Network namespaces of this slot's lab that exist now."""
    out = _run("ip", "netns", "list").stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"ml{slot}-")]


def _exists(ns):
    return os.path.exists(f"/run/netns/{ns}")


def _sysctls(ns, *keys):
    args = []
    for k in keys:
        args += ["-w", f"{k}"]
    _run("ip", "netns", "exec", ns, "sysctl", "-q", *args)


def ensure_router(slot):
    ns = router(slot)
    if _exists(ns):
        return ns
    _run("ip", "netns", "add", ns)
    # 127/8 must not be local here, or the router would answer for every pod instead of forwarding.
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    _run("ip", "-n", ns, "addr", "del", "127.0.0.1/8", "dev", "lo")
    _run("ip", "-n", ns, "addr", "add", "127.0.0.1/32", "dev", "lo")
    _sysctls(ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1",
             "net.ipv4.conf.default.route_localnet=1", "net.ipv4.conf.all.rp_filter=0",
             "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.send_redirects=0",
             "net.ipv4.conf.default.send_redirects=0")
    for rule in (["-P", "FORWARD", "DROP"],
                 ["-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]):
        _run("ip", "netns", "exec", ns, "iptables", *rule)
    ensure_lb_flows(slot)
    return ns


def add_router_address(slot, address):
    """An address the router itself answers on (a cluster's DNS)."""
    ns = ensure_router(slot)
    if f" {address}/32 " not in _run("ip", "-n", ns, "-o", "addr", "show", "dev", "lo").stdout:
        _run("ip", "-n", ns, "addr", "add", f"{address}/32", "dev", "lo")


def ensure_network(slot, net_index):
    """The bridge of one mesh network in the router, with the pods' gateway address."""
    ns = ensure_router(slot)
    br = f"b{net_index}"
    if _run("ip", "-n", ns, "link", "show", br, check=False).returncode == 0:
        return br
    _run("ip", "-n", ns, "link", "add", br, "type", "bridge")
    _run("ip", "-n", ns, "link", "set", br, "up")
    _sysctls(ns, f"net.ipv4.conf.{br}.route_localnet=1", f"net.ipv4.conf.{br}.rp_filter=0",
             f"net.ipv4.conf.{br}.send_redirects=0")
    _run("ip", "-n", ns, "addr", "add", f"{leg_address(slot, net_index)}/32", "dev", br)
    # Pods of one network reach each other (in and out of the same bridge); other networks only through LBs.
    _run("ip", "netns", "exec", ns, "iptables", "-A", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT")
    return br


def route_cluster(slot, layout: lay.ClusterLayout, net_index):
    """Send a cluster's pod and LoadBalancer ranges to its network's bridge; LoadBalancers are open to all."""
    ns = ensure_router(slot)
    br = ensure_network(slot, net_index)
    lb = _lb_cidr(layout)
    for cidr in (_pod_cidr(layout), lb):
        _run("ip", "-n", ns, "route", "replace", cidr, "dev", br, "src", leg_address(slot, net_index))
    rule = ["FORWARD", "-d", lb, "-j", "ACCEPT"]
    if _run("ip", "netns", "exec", ns, "iptables", "-C", *rule, check=False).returncode != 0:
        _run("ip", "netns", "exec", ns, "iptables", "-A", *rule)


def _pod_cidr(layout):
    return layout.pod_cidr.rsplit(".", 2)[0] + ".0.0/16"


def _lb_cidr(layout):
    return layout.lb_cidr


def add_pod(slot, ns, ip, net_index):
    """A pod's namespace on its network's bridge, with its IP; returns the namespace name."""
    br = ensure_network(slot, net_index)
    if _exists(ns):
        delete(ns)
    _run("ip", "netns", "add", ns)
    peer = "v" + ns.rsplit("-p", 1)[1][:10]
    try:
        _run("ip", "-n", router(slot), "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "-n", router(slot), "link", "set", peer, "master", br, "up")
        _sysctls(ns, "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.default.route_localnet=1",
                 "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "addr", "del", "127.0.0.1/8", "dev", "lo")
        for a in ("127.0.0.1/32", "127.0.0.6/32", f"{LOCAL_ONLY_V4}/32"):   # .6: Envoy's inbound passthrough source
            _run("ip", "-n", ns, "addr", "add", a, "dev", "lo")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _sysctls(ns, "net.ipv4.conf.eth0.route_localnet=1", "net.ipv4.conf.eth0.rp_filter=0")
        _run("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        for cidr in ("127.0.0.0/8", LB_RANGE):
            _run("ip", "-n", ns, "route", "add", cidr, "via", leg_address(slot, net_index), "dev", "eth0",
                 "onlink", "src", ip)
        _forget_neighbour(router(slot), ip)
    except NetError:
        delete(ns)
        raise
    return ns


def _forget_neighbour(router_ns, address):
    """kwok hands a deleted pod's IP to the next pod at once, and a LoadBalancer address moves with its gateway pod:
    the router's ARP entry for it would still name the old pod's MAC, and for up to a minute its packets would go
    nowhere (connections time out, xDS streams stall). A kubelet's new veth has a new IP-to-MAC binding announced;
    here the router forgets the old one and asks again."""
    _run("ip", "-n", router_ns, "neigh", "flush", "to", address, check=False)


def set_extra_addresses(slot, ns, addresses, current):
    """Make the pod own exactly `addresses` besides its IP (LoadBalancer addresses of its Services)."""
    for a in sorted(set(addresses) - set(current)):
        _run("ip", "-n", ns, "addr", "add", f"{a}/32", "dev", "eth0")
        _forget_neighbour(router(slot), a)
    for a in sorted(set(current) - set(addresses)):
        _run("ip", "-n", ns, "addr", "del", f"{a}/32", "dev", "eth0", check=False)


# ---- LoadBalancer flows: a cloud load balancer sends each new connection to a ready backend and keeps every
# established one on the backend it chose until that backend is gone (connection draining). Every gateway pod of a
# Service holds the address on its eth0; the router marks each new connection to it with the chosen pod's mark
# (conntrack keeps the mark for the connection's life), and each pod's mark routes via that pod's own IP. Without this,
# two pods of one address during a rollout would share it by ARP, and a connection could land on the pod that does
# not know it (a reset).
LB_CHAIN = "MLLB"


def lb_mark(pod_ip):
    """The pod's connection mark and routing table (its IP's low 28 bits: pod IPs are unique in a slot)."""
    a, b, c, d = (int(x) for x in pod_ip.split("."))
    return ((a << 24) | (b << 16) | (c << 8) | d) & 0x0FFFFFFF or 1


def _iptables(slot, *args, check=True):
    return _run("ip", "netns", "exec", router(slot), "iptables", "-w", "-t", "mangle", *args, check=check)


def ensure_lb_flows(slot):
    if _iptables(slot, "-N", LB_CHAIN, check=False).returncode != 0:
        return   # already there
    for rule in (["-d", LB_RANGE, "-j", "CONNMARK", "--restore-mark"],
                 ["-d", LB_RANGE, "-m", "mark", "--mark", "0", "-j", LB_CHAIN],
                 ["-d", LB_RANGE, "-j", "CONNMARK", "--save-mark"]):
        _iptables(slot, "-A", "PREROUTING", *rule)


def set_lb_backend(slot, pod_ip, net_index, addresses):
    """Connections marked with this pod's mark go to it, for each of its LoadBalancer addresses."""
    mark = str(lb_mark(pod_ip))
    ns = router(slot)
    _run("ip", "-n", ns, "route", "flush", "table", mark, check=False)
    if not addresses:
        _run("ip", "-n", ns, "rule", "del", "fwmark", mark, "table", mark, check=False)
        return
    if f"lookup {mark}" not in _run("ip", "-n", ns, "rule", "show", "fwmark", mark).stdout:
        _run("ip", "-n", ns, "rule", "add", "fwmark", mark, "table", mark)
    for a in addresses:
        _run("ip", "-n", ns, "route", "replace", f"{a}/32", "via", pod_ip, "dev", f"b{net_index}", "onlink",
             "table", mark)


def set_lb_new_flows(slot, address, pod_ip):
    """New connections to the address go to this pod (None: to whichever holder answers ARP)."""
    for line in _iptables(slot, "-S", LB_CHAIN).stdout.splitlines():
        if f"-d {address}/32 " in line + " ":
            _iptables(slot, "-D", LB_CHAIN, *line.split()[2:])
    if pod_ip:
        _iptables(slot, "-A", LB_CHAIN, "-d", f"{address}/32", "-j", "MARK", "--set-mark", str(lb_mark(pod_ip)))


def pids_in(ns):
    """Processes in the namespace (kubectl exec sessions among them: kwok starts them, not the lab)."""
    out = _run("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def delete(ns):
    # Deleting the namespace removes its veth, and with it the peer on the bridge.
    if _exists(ns):
        _run("ip", "netns", "del", ns, check=False)


def delete_all(slot):
    for ns in lab_namespaces(slot):
        if ns != router(slot):
            delete(ns)
    delete(router(slot))


# ---- running Python code inside a pod's network namespace (readiness probes) ---------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def call_in(ns, fn, timeout=5.0):
    """Run fn() in a thread that entered namespace `ns` (setns changes only the calling thread); returns its
    result or raises what it raised."""
    box = {}

    def body():
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {ns}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"{ns}: no answer in {timeout}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
