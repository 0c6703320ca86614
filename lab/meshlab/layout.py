"""Addresses and ports of a lab, unique per slot (several labs may run at once) and per cluster.

Every listener, the Service range and the Pod range are inside 127.0.0.0/8. LoadBalancer addresses are not: the API
server refuses loopback addresses in EndpointSlices, and a remote's istiod Service gets one with its primary's
east-west gateway address (the remote profile's `global.remotePilotAddress`). They come from 198.19.0.0/16 (part of
the RFC 2544 benchmarking range 198.18.0.0/15), one /24 per cluster and slot, and exist only inside the lab's own
network namespaces: with real pods on the owning gateway pod's eth0, routed by the lab's router namespace (podnet);
with simulated pods nowhere. Nothing in the root namespace dials them (the lab, its tests and the integration tests
only read them from Service status or dial them from inside a pod's namespace), so no process ever dials an address
outside loopback from the root namespace."""
import ipaddress
from dataclasses import dataclass

MAX_CLUSTERS = 9
MAX_SLOTS = 8
ISTIOD_PORTS = ("http", "grpc", "secure_grpc", "monitoring", "ctrlz")
LB_ADDRESSES = 245      # .10-.254 of a cluster's /24


@dataclass(frozen=True)
class ClusterLayout:
    slot: int
    index: int

    @property
    def name(self):
        return f"c{self.index}"

    @property
    def context(self):
        return f"lab-c{self.index}" if self.slot == 0 else f"lab{self.slot}-c{self.index}"

    def _octet(self, kind):
        # slot 0: services 127.11-19, pods 127.21-29, load balancers 198.19.31-39; slot 1: 41-49, 51-59, 61-69; ...
        # (slot 7 ends at 249)
        return 10 * (3 * self.slot + kind) + self.index

    @property
    def service_cidr(self):
        return f"127.{self._octet(1)}.0.0/16"

    @property
    def first_service_ip(self):
        return f"127.{self._octet(1)}.0.1"

    @property
    def pod_cidr(self):
        return f"127.{self._octet(2)}.0.1/16"

    def lb_address(self, n):
        """The n-th LoadBalancer address of this cluster (n < LB_ADDRESSES), in its own /24 of 198.19.0.0/16."""
        if not 0 <= n < LB_ADDRESSES:
            raise ValueError(f"{self.context}: no LoadBalancer address left (at most {LB_ADDRESSES})")
        return f"198.19.{self._octet(3)}.{10 + n}"

    @property
    def lb_cidr(self):
        return f"198.19.{self._octet(3)}.0/24"

    @property
    def port_base(self):
        # Below the kernel's ephemeral range (32768+) for every slot.
        return 20000 + 1200 * self.slot + 100 * self.index

    @property
    def etcd_port(self):
        return self.port_base

    @property
    def etcd_peer_port(self):
        return self.port_base + 1

    @property
    def api_port(self):
        return self.port_base + 2

    @property
    def kcm_port(self):
        return self.port_base + 3

    @property
    def sched_port(self):
        return self.port_base + 4

    @property
    def kwok_port(self):
        return self.port_base + 5

    @property
    def server(self):
        return f"https://127.0.0.1:{self.api_port}"

    def istiod_ports(self, n):
        """Ports of the n-th istiod (0..7) of this cluster."""
        base = self.port_base + 20 + 10 * n
        return dict(zip(ISTIOD_PORTS, range(base, base + len(ISTIOD_PORTS))))

    def fixed_ports(self):
        return [self.etcd_port, self.etcd_peer_port, self.api_port, self.kcm_port, self.sched_port, self.kwok_port]


def clusters(slot, count):
    return [ClusterLayout(slot, i) for i in range(1, count + 1)]


def is_lb_address(slot, address):
    """Whether `address` is a LoadBalancer address of a cluster of this slot's lab."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(ClusterLayout(slot, i).lb_cidr) for i in range(1, MAX_CLUSTERS + 1))
