"""meshlab benchmark (prints figures; not a test): build times, `up` time for 2 and 8 clusters, resident memory.

Cold build times are the ones recorded when each component was first built on this machine (a real cold build
takes ~20 min); the warm build is measured now (it must be a no-op).
"""
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from meshlab import build, lab as labmod, paths, procs, versions


def measure_up(count, slot):
    with tempfile.TemporaryDirectory() as home:
        lb = labmod.Lab(Path(home) / "lab")
        t0 = time.monotonic()
        lb.up(count=count, slot=slot, out=open(os.devnull, "w"))
        seconds = time.monotonic() - t0
        time.sleep(3)  # let the components settle before reading memory
        per_cluster = {}
        for rec in lb.records():
            cluster = rec["name"].split("/")[0]
            per_cluster[cluster] = per_cluster.get(cluster, 0) + procs.rss_kib(rec["pid"])
        total = sum(per_cluster.values())
        lb.down(out=open(os.devnull, "w"))
        return seconds, per_cluster, total


def main():
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, {platform.platform()}")
    print("first build on this machine, per component (recorded in its .complete stamp; cold only if the Go caches were empty):")
    for component in build.STEPS:
        stamp = paths.component_dir(component) / ".complete"
        secs = json.loads(stamp.read_text()).get("seconds") if stamp.exists() else None
        print(f"  {component:12} {versions.COMPONENTS[component]:40} {secs if secs is not None else '?'} s")
    t0 = time.monotonic()
    build.build(out=open(os.devnull, "w"))
    print(f"warm build (no-op): {time.monotonic() - t0:.2f} s")
    slot = int(os.environ.get("MESHLAB_SLOT", "2"))
    for count, target_s, target_mem in ((2, 15, None), (8, 60, 8 * 2**20)):
        seconds, per_cluster, total = measure_up(count, slot)
        clusters = {k: v for k, v in per_cluster.items() if k != "supervisor"}
        avg = sum(clusters.values()) / len(clusters) / 1024
        verdict = "meets" if seconds <= target_s and (target_mem is None or total <= target_mem) else "MISSES"
        print(f"up {count} clusters: {seconds:.1f} s (target <= {target_s} s); resident memory {total / 2**20:.2f} GiB "
              f"in all, {avg:.0f} MiB per cluster (supervisor {per_cluster.get('supervisor', 0) / 1024:.0f} MiB) "
              f"-> {verdict} the target")


if __name__ == "__main__":
    main()
