#!/usr/bin/env bash
# Install the Debian packages of lab/debian-packages.txt (real pods need them) and hack/ee-debian-packages.txt (the
# execution-environment image) that are missing; a no-op when all are there. Without root and apt-get it says what
# is missing: `meshlab up --dataplane simulated` still works then.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(grep -hv '^#' lab/debian-packages.txt hack/ee-debian-packages.txt | grep .)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "lab packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
else
  echo "lab packages missing (needs root and apt-get to install): ${missing[*]}; real pods will not start" >&2
fi
