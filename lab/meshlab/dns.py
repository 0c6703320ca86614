"""Cluster DNS for real pods: what kube-dns answers, for Services: `<svc>.<ns>.svc.cluster.local` -> its ClusterIP.

One UDP responder per cluster, on the cluster's DNS address (`<service range>.0.10`, the nameserver in every real
pod's resolv.conf), inside the lab's router namespace: pods reach it as they reach anything, and nothing listens in
the root namespace. Names it does not know get NXDOMAIN, as from kube-dns for a missing Service; other types than A
get an empty answer.

The responder is a process of its own, as kube-dns is: answered from a thread of the busy supervisor, a query could
wait seconds for the interpreter lock under load, longer than a client's resolver waits (a lost request). The
supervisor binds the socket in the router namespace, hands it to the process and sends it the records on its stdin."""
import json
import selectors
import socket
import struct
import subprocess
import sys

from . import podnet

DOMAIN = "cluster.local"
TTL = 5


def dns_address(layout):
    return layout.first_service_ip.rsplit(".", 1)[0] + ".10"


class ClusterDNS:
    def __init__(self, slot, layout, log):
        self.slot = slot
        self.address = dns_address(layout)
        self.log = log
        self.proc = None
        self.sent = None

    def start(self):
        if self.proc is not None:
            return
        podnet.add_router_address(self.slot, self.address)
        # A socket stays in the namespace it was made in; the responder gets it already bound.
        sock = podnet.call_in(podnet.router(self.slot), self._bind)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "meshlab.dns", str(sock.fileno())], pass_fds=(sock.fileno(),),
                                         stdin=subprocess.PIPE, text=True)
        finally:
            sock.close()
        self.sent = None
        self.log(f"cluster DNS on {self.address}:53 (in {podnet.router(self.slot)}, pid {self.proc.pid})")

    def _bind(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.address, 53))
        return s

    def update(self, services):
        """services: the cluster's Service objects."""
        records = {}
        for s in services:
            ip = s.spec.cluster_ip
            if ip and ip != "None":
                records[f"{s.metadata.name}.{s.metadata.namespace}.svc.{DOMAIN}"] = ip
        if records != self.sent and self.proc is not None:
            self.proc.stdin.write(json.dumps(records) + "\n")
            self.proc.stdin.flush()
            self.sent = records

    def stop(self):
        if self.proc is not None:
            proc, self.proc = self.proc, None
            try:
                proc.stdin.close()   # the responder exits when its stdin ends
            except OSError:
                pass
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)


def serve(fd):
    """The responder process: answers on the socket, takes new records from stdin (one JSON object per line)."""
    sock = socket.socket(fileno=fd)
    records = {}
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, dummy in sel.select():
            if key.fileobj is sys.stdin:
                line = sys.stdin.readline()
                if not line:
                    return
                records = json.loads(line)
                continue
            try:
                data, peer = sock.recvfrom(1500)
                reply = answer(data, records)
            except (ValueError, IndexError, struct.error):
                continue  # not a DNS query we can parse: drop it, as a server would
            except OSError:
                return
            try:
                sock.sendto(reply, peer)
            except OSError:
                pass


def answer(query, records):
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        raise ValueError("one question per query")
    labels, pos = [], 12
    while query[pos]:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n].decode("ascii").lower())
        pos += 1 + n
    qtype, qclass = struct.unpack("!HH", query[pos + 1:pos + 5])
    question = query[12:pos + 5]
    name = ".".join(labels)
    ip = records.get(name)
    rd = flags & 0x0100
    rcode = 0 if ip is not None or name in _parents(records) else 3  # NXDOMAIN
    answers = b""
    if ip is not None and qtype == 1 and qclass == 1:
        answers = struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(ip)
    header = struct.pack("!HHHHHH", ident, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, 1 if answers else 0, 0, 0)
    return header + question + answers


def _parents(records):
    # A name that is a parent of a record exists (NOERROR, no data), as in any zone.
    found = set()
    for name in records:
        parts = name.split(".")
        for i in range(1, len(parts)):
            found.add(".".join(parts[i:]))
    return found


if __name__ == "__main__":
    serve(int(sys.argv[1]))
