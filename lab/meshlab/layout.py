"""Addresses and ports of a lab: everything inside 127.0.0.0/8, unique per slot (several labs may run at once)
and per cluster, so no process ever listens on or dials an address outside loopback."""
from dataclasses import dataclass

MAX_CLUSTERS = 9
MAX_SLOTS = 8
ISTIOD_PORTS = ("http", "grpc", "secure_grpc", "monitoring", "ctrlz")


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
        # slot 0: services 127.11-19, pods 127.21-29, load balancers 127.31-39; slot 1: 41-49, 51-59, 61-69; ...
        # (slot 7 ends at 127.249)
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
        return f"127.{self._octet(3)}.{n // 250}.{10 + n % 250}"

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
