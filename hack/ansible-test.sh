#!/usr/bin/env bash
# The one entry point for the collection's quality gates (the Makefile calls it):
#
#   hack/ansible-test.sh sanity [ansible-test sanity args...]   ansible-test sanity, no containers
#   hack/ansible-test.sh units  [ansible-test units args...]    ansible-test units in its own venv
#   hack/ansible-test.sh lint   [ansible-lint args...]          ansible-lint, production profile, offline
#   hack/ansible-test.sh build                                  ansible-galaxy collection build + content check
#
# Environment:
#   VENV                    development venv (default: <repo>/.venv, see requirements-dev.txt)
#   ANSIBLE_TEST_PYTHON     Python version for ansible-test (default: 3.11)
#   MATERIALISE_EXCLUDE     top-level paths not copied into the ansible-test checkout
#                           (default: "lab benchmarks": not collection content, not shipped)
#
# ansible-test needs the collection at .../ansible_collections/<namespace>/<name>/ inside a git
# checkout, so sanity/units/lint run on a copy at <repo>/.cache/collections/ansible_collections/
# meshops/istio made from the files git sees in the work tree (tracked + untracked-not-ignored):
# uncommitted work is tested too. Dependency collections (galaxy.yml `dependencies`) are linked
# next to it from the venv's `ansible` package, since Galaxy is not reachable.
# Offline details (the get-pip stand-in): /work/shared/reference/offline-testing.md.
set -euo pipefail
shopt -s inherit_errexit # set -e also inside $(...)

readonly PROG="hack/ansible-test.sh"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO
VENV="${VENV:-$REPO/.venv}"
readonly PYTHON_VERSION="${ANSIBLE_TEST_PYTHON:-3.11}"
readonly MATERIALISE_EXCLUDE="${MATERIALISE_EXCLUDE-lab benchmarks}"
readonly CACHE_DIR="$REPO/.cache"
readonly COLLECTIONS_ROOT="$CACHE_DIR/collections"
readonly DIST_DIR="$CACHE_DIR/dist"

STEP=""
STARTED=$SECONDS

log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# One summary line per step, also when the step fails (set -e / ansible-test exit codes).
on_exit() {
    local rc=$?
    [[ -n "$STEP" ]] || return 0
    if [[ $rc -eq 0 ]]; then
        printf '==> %s: PASSED (%ds)\n' "$STEP" "$((SECONDS - STARTED))"
    else
        printf '==> %s: FAILED with exit code %d (%ds)\n' "$STEP" "$rc" "$((SECONDS - STARTED))"
    fi
}
trap on_exit EXIT

check_venv() {
    [[ -x "$VENV/bin/python" && -x "$VENV/bin/ansible-test" ]] ||
        die "no usable venv at $VENV (create it: python3.11 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt, or set VENV)"
    PY="$VENV/bin/python"
    export PATH="$VENV/bin:$PATH"
    # Never let a caller's ANSIBLE_COLLECTIONS_PATH/ANSIBLE_CONFIG leak into the gates, nor a git
    # hook's GIT_DIR/GIT_INDEX_FILE redirect the git commands below to the wrong repository.
    unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_CONFIG GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
}

# Read namespace/name/dependencies from galaxy.yml (single source of truth).
read_galaxy() {
    local out
    out="$("$PY" - "$REPO/galaxy.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    g = yaml.safe_load(f)
print(g["namespace"], g["name"])
print(" ".join(sorted((g.get("dependencies") or {}).keys())))
PY
)" || die "cannot read $REPO/galaxy.yml"
    read -r NAMESPACE NAME <<<"$(sed -n 1p <<<"$out")"
    DEPENDENCIES="$(sed -n 2p <<<"$out")"
    COLLECTION_DIR="$COLLECTIONS_ROOT/ansible_collections/$NAMESPACE/$NAME"
}

# ansible-test bootstraps pip into each venv it creates by running
# ~/.ansible/test/cache/get_pip_<X_Y>.py, downloading it from a host that is unreachable here when
# missing. Install an offline stand-in (ensurepip + pip from the configured index) if absent.
install_get_pip_standin() {
    local pip_version target tmp
    pip_version="$("$PY" - <<'PY'
import os
import re
import ansible_test
path = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
with open(path, encoding="utf-8") as f:
    m = re.search(r"""\bpip=['"]([0-9.]+)['"]""", f.read())
print(m.group(1) if m else "")
PY
)"
    [[ -n "$pip_version" ]] || die "cannot find the pip version ansible-test pins (ansible_test/_internal/python_requirements.py)"
    target="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$(dirname "$target")"
    if [[ -f "$target" ]] && ! grep -q '^# meshops-get-pip-standin' "$target"; then
        return 0 # a real get-pip script (e.g. downloaded on a networked machine): keep it
    fi
    tmp="$(mktemp "$target.XXXXXX")"
    cat >"$tmp" <<'STANDIN'
# meshops-get-pip-standin v1 (written by meshops.istio hack/ansible-test.sh; safe to delete)
"""Offline stand-in for the get-pip script ansible-test downloads to bootstrap pip.

ansible-test runs this file with the python of a fresh, pip-less virtual environment and
pip-install arguments, e.g. ``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
It installs the interpreter's bundled pip with ensurepip (no network), then lets that pip install
the requested packages from the machine's configured index (/etc/pip.conf).
"""
import ensurepip
import importlib.util
import os
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")  # get-pip options, unknown to pip install


def main():
    argv = sys.argv[1:]
    pip_args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    had_setuptools = importlib.util.find_spec("setuptools") is not None

    ensurepip.bootstrap(default_pip=True)

    # ensurepip.bootstrap() leaves PIP_CONFIG_FILE=/dev/null and ENSUREPIP_OPTIONS in os.environ.
    # Inherited by pip, the former hides /etc/pip.conf (and the CA bundle it sets), so every
    # download would fail certificate verification.
    os.environ.pop("PIP_CONFIG_FILE", None)
    os.environ.pop("ENSUREPIP_OPTIONS", None)

    rc = subprocess.call([sys.executable, "-m", "pip", "install"] + pip_args)

    # Like get-pip: --no-setuptools means the environment ends up without setuptools (older
    # Pythons' ensurepip installs it alongside pip). Uninstalling an absent package is a no-op.
    wants_setuptools = any(arg.lower().startswith("setuptools") for arg in pip_args)
    if rc == 0 and "--no-setuptools" in argv and not had_setuptools and not wants_setuptools:
        subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet",
                         "--disable-pip-version-check", "setuptools"], stdout=subprocess.DEVNULL)
    sys.exit(rc)


if __name__ == "__main__":
    main()
STANDIN
    chmod 0644 "$tmp"
    if [[ -f "$target" ]] && cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$target"
        log "installed get-pip stand-in: $target"
    fi
}

# Copy the work tree (as git sees it) to the ansible-test checkout; only changed files are
# rewritten, files gone from the work tree are removed, and the checkout's ignored state
# (tests/output with ansible-test's --venv environment, .git) is kept between runs.
materialise() {
    git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$REPO is not a git work tree"
    mkdir -p "$COLLECTION_DIR"
    "$PY" - "$REPO" "$COLLECTION_DIR" "$MATERIALISE_EXCLUDE" <<'PY'
import os
import shutil
import stat
import subprocess
import sys

src, dst, extra = sys.argv[1], sys.argv[2], sys.argv[3].split()
excluded = {".venv", ".cache", ".git"} | set(extra)


def git_files(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "-z", "-co", "--exclude-standard"],
                         check=True, stdout=subprocess.PIPE).stdout
    return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}


def keep(rel):
    return rel.split("/", 1)[0] not in excluded and os.path.lexists(os.path.join(src, rel))


wanted = {p for p in git_files(src) if keep(p)}
existing = git_files(dst) if os.path.isdir(os.path.join(dst, ".git")) else set()

removed = copied = 0
for rel in sorted(existing - wanted):
    path = os.path.join(dst, rel)
    if os.path.lexists(path) and not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        removed += 1

for rel in sorted(wanted):
    s, d = os.path.join(src, rel), os.path.join(dst, rel)
    st = os.lstat(s)
    if os.path.lexists(d) and not os.path.isdir(d) or os.path.islink(d):
        dt = os.lstat(d)
        if stat.S_ISLNK(st.st_mode):
            if stat.S_ISLNK(dt.st_mode) and os.readlink(s) == os.readlink(d):
                continue
        elif (not stat.S_ISLNK(dt.st_mode) and dt.st_size == st.st_size
              and dt.st_mtime_ns == st.st_mtime_ns and dt.st_mode == st.st_mode):
            continue
        os.unlink(d)
    elif os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), d)
    else:
        shutil.copy2(s, d)
    copied += 1

# prune directories left empty, but not inside .git or ansible-test's ignored output
skip = {".git", os.path.join("tests", "output")}
walked = []
for root, dirs, files in os.walk(dst):
    rel = os.path.relpath(root, dst)
    dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in skip]
    if rel != ".":
        walked.append(root)
for path in reversed(walked):  # children before parents
    if not os.listdir(path):
        os.rmdir(path)

print(f"{len(wanted)} files ({copied} copied, {removed} removed)")
PY
    if [[ ! -d "$COLLECTION_DIR/.git" ]]; then
        git -C "$COLLECTION_DIR" -c init.defaultBranch=main init -q
    fi
    # Stage everything (no commit needed: ansible-test lists files with
    # `git ls-files --cached --others --exclude-standard` and drops `--deleted` ones).
    git -C "$COLLECTION_DIR" add -A
}

# Make galaxy.yml dependencies importable for ansible-test (it sets ANSIBLE_COLLECTIONS_PATH to
# the collection root only) by linking them from the venv's `ansible` package.
link_dependencies() {
    local site dep ns name src link
    site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    for dep in $DEPENDENCIES; do
        ns="${dep%%.*}"
        name="${dep#*.}"
        src="$site/ansible_collections/$ns/$name"
        link="$COLLECTIONS_ROOT/ansible_collections/$ns/$name"
        [[ -d "$src" ]] || die "dependency $dep not found in $site/ansible_collections (pip install ansible, see requirements-dev.txt)"
        if [[ "$(readlink "$link" 2>/dev/null || true)" != "$src" ]]; then
            mkdir -p "$(dirname "$link")"
            rm -rf "$link"
            ln -s "$src" "$link"
        fi
    done
}

prepare() {
    local t0=$SECONDS summary
    summary="$(materialise)"
    link_dependencies
    log "checkout $COLLECTION_DIR: $summary, dependencies: ${DEPENDENCIES:-none} ($((SECONDS - t0))s)"
}

cmd_sanity() {
    install_get_pip_standin
    prepare
    cd "$COLLECTION_DIR"
    # No --docker/--venv: ansible-test makes one cached venv per sanity test under
    # ~/.ansible/test/venv (pip bootstrapped by the stand-in, packages from PyPI). No test is
    # skipped; shellcheck/pslint report "skipped" by themselves when the tool is not installed.
    ansible-test sanity --python "$PYTHON_VERSION" -v "$@"
}

cmd_units() {
    install_get_pip_standin
    prepare
    cd "$COLLECTION_DIR"
    if [[ -z "$(find tests/unit -name 'test_*.py' -print -quit 2>/dev/null)" ]]; then
        log "no unit tests (tests/unit/**/test_*.py) yet: nothing to run"
        return 0
    fi
    # --venv: ansible-test creates (once) and reuses tests/output/.tmp/delegation/python<X.Y> in
    # the checkout and installs its units requirements plus tests/unit/requirements.txt there.
    ansible-test units --venv --python "$PYTHON_VERSION" -v "$@"
}

cmd_lint() {
    prepare
    cd "$REPO"
    # Our collection and its dependencies resolve from the checkout; offline: true in
    # .ansible-lint keeps ansible-lint from installing anything.
    ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_ROOT" ansible-lint "$@"
}

cmd_build() {
    local tarball bad readme line
    mkdir -p "$DIST_DIR"
    cd "$REPO"
    ansible-galaxy collection build --force --output-path "$DIST_DIR" "$@"
    tarball="$DIST_DIR/$NAMESPACE-$NAME-$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml).tar.gz"
    [[ -f "$tarball" ]] || die "expected $tarball"
    log "contents of $tarball:"
    tar -tzf "$tarball" | sed 's|^\./||' | sort | sed 's/^/    /' >&2
    bad="$(tar -tzf "$tarball" | sed 's|^\./||' |
        grep -E '^(lab|benchmarks)(/|$)|^\.(venv|cache|ci)|(^|/)__pycache__(/|$)' || true)"
    if [[ -n "$bad" ]]; then
        log "the tarball contains paths that must not ship (fix build_ignore in galaxy.yml):"
        while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$bad" >&2
        return 1
    fi
    readme="$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["readme"])' galaxy.yml)"
    if ! tar -tzf "$tarball" | sed 's|^\./||' | grep -xF "$readme" >/dev/null; then
        # Not fatal yet (the README is still to be written), but Galaxy/Automation Hub reject it.
        log "WARNING: galaxy.yml readme '$readme' is not in the tarball: the Galaxy import would fail"
    fi
    log "$(tar -tzf "$tarball" | wc -l) entries, none under lab/ benchmarks/ .venv* .cache* .ci* or __pycache__"
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
    sanity | units | lint | build) shift ;;
    -h | --help | help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    STEP="$cmd"
    check_venv
    read_galaxy
    # One run at a time per checkout: concurrent runs would rewrite each other's files.
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.ansible-test.lock"
    if ! flock -n 9; then
        log "waiting for another $PROG run in this work tree to finish..."
        flock 9
    fi
    "cmd_$cmd" "$@"
}

main "$@"
