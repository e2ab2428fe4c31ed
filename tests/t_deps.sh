#!/usr/bin/env bash
# scripts/install-deps.sh (make deps) without touching the system: dpkg-query,
# apt-get, apt-cache and sudo are stand-ins that report every package missing
# and record how they were called. Run as an ordinary user (root drops to
# `nobody` for it): without sudo it names the missing packages and fails;
# with sudo it runs apt-get through sudo with the whole set; an unknown set is
# a usage error (64).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
WORK=$(mktemp -d /tmp/reluscope-deps.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
mkdir -p "$WORK/bin" "$WORK/sudo"
stub() { printf '#!/bin/sh\n%s\n' "$2" > "$1"; chmod 755 "$1"; }
stub "$WORK/bin/dpkg-query" 'exit 1'                       # nothing is installed
stub "$WORK/bin/apt-cache" 'exit 1'
stub "$WORK/bin/apt-get" "echo \"apt-get \$*\" >> $WORK/calls"
stub "$WORK/sudo/sudo" "echo \"sudo \$*\" >> $WORK/calls"
cp "$ROOT/scripts/install-deps.sh" "$ROOT/scripts/fetch-brown.sh" "$WORK/"
: > "$WORK/calls"; chmod 666 "$WORK/calls"
as_user() {   # PATH-PREFIX CMD...: as a non-root user, with the stand-ins first on PATH
    local path=$1; shift
    if [ "$(id -u)" -eq 0 ]; then
        su -s /bin/bash nobody -c "PATH=$path:/usr/bin:/bin SKIP_CORPUS=1 $*"
    else
        PATH=$path:/usr/bin:/bin SKIP_CORPUS=1 "$@"
    fi
}
# no sudo: fail, naming the packages and saying to run it as root
rc=0; as_user "$WORK/bin" bash "$WORK/install-deps.sh" fuzz > "$WORK/out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "missing packages (clang-14 libclang-rt-14-dev valgrind); run 'make deps' as root (there is no sudo)" "$WORK/out" \
    || fail "without sudo: exit $rc: $(cat "$WORK/out")"
[ ! -s "$WORK/calls" ] || fail "without sudo apt-get was called: $(cat "$WORK/calls")"
# with sudo: apt-get update and install go through sudo, with every package of the sets
rc=0; as_user "$WORK/bin:$WORK/sudo" bash "$WORK/install-deps.sh" fuzz report > "$WORK/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "with sudo: exit $rc: $(cat "$WORK/out")"
grep -q '^sudo env DEBIAN_FRONTEND=noninteractive apt-get update' "$WORK/calls" \
    && grep -q '^sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev valgrind chromium$' "$WORK/calls" \
    || fail "with sudo: unexpected calls: $(cat "$WORK/calls")"
# every set: all of what the tests need is in the table
rc=0; as_user "$WORK/bin:$WORK/sudo" bash "$WORK/install-deps.sh" > "$WORK/out" 2>&1 || rc=$?
all=$(grep 'apt-get install' "$WORK/calls" | tail -n 1)
for p in libopenmpi-dev libscalapack-openmpi-dev libnetcdf-dev python3-xarray \
         chromium slurmctld slurmd munge shellcheck clang-14 valgrind python3-torch; do
    grep -qw -- "$p" <<< "$all" || fail "make deps does not install $p: $all"
done
# an unknown set
rc=0; bash "$ROOT/scripts/install-deps.sh" nosuchset > "$WORK/out" 2>&1 || rc=$?
[ "$rc" -eq 64 ] && grep -q "unknown set 'nosuchset'" "$WORK/out" || fail "unknown set: exit $rc: $(cat "$WORK/out")"
echo "t_deps: no sudo -> one error naming the packages; sudo -> apt-get through sudo; every test package in make deps"
