#!/usr/bin/env bash
# `make test`: every test, in order of cost. Each step runs even if an earlier one failed; the exit code says
# whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
export MESHLAB_SLOT=${MESHLAB_SLOT:-1}
failed=()
step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then echo "=== $name: ok ($((SECONDS - t0))s)"; else echo "=== $name: FAILED ($((SECONDS - t0))s)"; failed+=("$name"); fi
}
# tests/integration/test_report.py takes a real headless screenshot of the mesh report with Chromium: install it when
# it is missing and this run may (root with apt-get); otherwise that one check skips and says why.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || {
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
  else
    echo "chromium is missing and cannot be installed here (needs root and apt-get): the report screenshot test will skip"
  fi
}
step "chromium for the report test" ensure_chromium
step "ansible-test sanity" bash hack/ansible-test.sh sanity
step "ansible-test units" bash hack/ansible-test.sh units
step "ansible-lint" bash hack/ansible-test.sh lint
step "collection build" bash hack/ansible-test.sh build
step "ecosystem tests" pytest -q -p no:cacheprovider tests/ecosystem
step "lab tests" pytest -q -p no:cacheprovider lab/tests
if [ -d tests/integration ]; then
  # Two workers, each with its own lab slot; a file's tests share its module-scoped lab, so whole files go to one worker.
  step "integration tests" pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/integration
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "make test: FAILED: ${failed[*]}"
  exit 1
fi
echo "make test: all steps passed"
