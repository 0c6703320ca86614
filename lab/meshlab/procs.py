"""Start processes detached and stop exactly those, by pid. A pid is only signalled while its start time still
matches the one recorded, so a recycled pid is never hit."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def start_time(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the parenthesised command name, which may contain spaces.
    return int(stat.rsplit(")", 1)[1].split()[19])


def rss_kib(pid):
    """Resident memory of a process, KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(record):
    st = start_time(record["pid"])
    if st is None or st != record["start"]:
        return False
    state = Path(f"/proc/{record['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def spawn(name, argv, log_path, cwd=None, env=None):
    """Start argv in its own session with output to log_path; returns the record to keep."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, start_new_session=True)
    return {"name": name, "pid": proc.pid, "start": start_time(proc.pid), "log": str(log_path)}


def stop(records, timeout=10.0):
    """SIGTERM every live record, wait, then SIGKILL what is left; returns names that needed SIGKILL."""
    live = [r for r in records if alive(r)]
    for r in live:
        _signal(r, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(r) for r in live):
        time.sleep(0.1)
    for r in live:
        _reap(r["pid"])
    killed = []
    for r in live:
        if alive(r):
            _signal(r, signal.SIGKILL)
            killed.append(r["name"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(r) for r in live):
        time.sleep(0.05)
    for r in live:
        _reap(r["pid"])
    return killed


def kill(record, timeout=5.0):
    """SIGKILL one live record at once (a crash, not a shutdown) and wait until it is gone."""
    if not alive(record):
        return
    _signal(record, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(record):
        time.sleep(0.05)
        _reap(record["pid"])


def _signal(record, sig):
    try:
        os.kill(record["pid"], sig)
    except ProcessLookupError:
        pass
    _reap(record["pid"])


def _reap(pid):
    # Children of this very process would stay zombies (and keep their pid) without a wait.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def listening_ports(pids):
    """(address, port) pairs that the given pids listen on, from /proc (no external tools)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
            addr, port = parts[1].split(":")
            ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
            found.append((ip, int(port, 16)))
    return found


def group_members(pgid):
    """Live pids in process group `pgid` (a record's pid: spawn makes each process a session leader)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def term_group(record):
    """SIGTERM a record's process group (its children too, e.g. the Envoy of a pilot-agent); returns the pids."""
    pgid = record["pid"]
    members = group_members(pgid)
    if alive(record) or members:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _reap(pgid)
    return members


def kill_group(record):
    """SIGKILL what is left of a record's process group; returns True if anything was left."""
    pgid = record["pid"]
    _reap(pgid)
    left = group_members(pgid)
    if left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and group_members(pgid):
            _reap(pgid)
            time.sleep(0.05)
    return bool(left)


def stop_group(record, timeout=10.0):
    """SIGTERM a record's process group, wait up to timeout, then SIGKILL what is left."""
    term_group(record)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_members(record["pid"]):
        _reap(record["pid"])
        time.sleep(0.1)
    return kill_group(record)
