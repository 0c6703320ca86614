"""Execution-environment image benchmark (prints figures; not a test): the lab variant of execution-environment.yml
built by hack/ee.py cold (its base image and the EE image removed first), then again with nothing changed (cached),
and the sizes of both images.

    python benchmarks/ee_build.py [--keep-cache]   # --keep-cache: skip the cold build, time only the cached one
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hack"))
import ee  # noqa: E402


def images():
    out = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith((ee.BASE_REPO, ee.EE_REPO))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-cache", action="store_true")
    args = parser.parse_args()
    rows = []
    if not args.keep_cache:
        for line in images():
            subprocess.run(["podman", "rmi", "-f", line.split()[0]], check=False, capture_output=True)
        t0 = time.monotonic()
        ee.image()
        rows.append(("cold build (base image + EE image)", time.monotonic() - t0))
    t0 = time.monotonic()
    name, built = ee.image()
    rows.append(("cached (nothing changed)" if not built else "build", time.monotonic() - t0))
    print(f"machine: {os.cpu_count()} cores")
    for what, seconds in rows:
        print(f"{what:40s} {seconds:7.1f} s")
    for line in images():
        ref, size = line.split(" ", 1)
        print(f"{ref:60s} {size}")


if __name__ == "__main__":
    main()
