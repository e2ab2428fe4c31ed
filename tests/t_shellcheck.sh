#!/usr/bin/env bash
# Every shell script of the Slurm jobs and of scripts/ parses (bash -n) and
# passes shellcheck at severity warning (errors and warnings fail; the
# info/style notes do not). shellcheck comes from Debian:
# make deps (scripts/install-deps.sh) installs it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "FAIL: shellcheck is not installed: run 'make deps' as root" >&2
    exit 1
fi
files=()
for f in jobs/* scripts/*.sh tests/t_slurm.sh tests/t_deps.sh tests/t_shellcheck.sh tests/slurm/*.sh; do
    [ -f "$f" ] || continue
    case $f in *.sh|*.sbatch) files+=("$f") ;; esac
done
[ "${#files[@]}" -gt 0 ] || { echo "FAIL: no scripts found" >&2; exit 1; }
bad=0
for f in "${files[@]}"; do
    if ! out=$(bash -n "$f" 2>&1); then
        echo "FAIL: bash -n $f: $out" >&2; bad=1
    fi
done
# -x follows `source` (paths in `# shellcheck source=` are relative to the checkout)
if ! shellcheck -x --severity=warning "${files[@]}"; then
    echo "FAIL: shellcheck found problems (above)" >&2; bad=1
fi
[ "$bad" -eq 0 ] || exit 1
echo "t_shellcheck: ${#files[@]} scripts clean: ${files[*]}"
