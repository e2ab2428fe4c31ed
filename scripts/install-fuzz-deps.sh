#!/usr/bin/env bash
# Installs what the reliability tests need beyond scripts/install-deps.sh
# (idempotent; run as root): clang + libclang-rt for the libFuzzer harnesses
# (fuzz/run.sh, tests/t_fuzz.sh) and valgrind (tests/t_valgrind.sh).
set -euo pipefail
pkgs=(clang-14 libclang-rt-14-dev valgrind)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "fuzz deps: all present (${pkgs[*]})"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "reluscope: error: missing packages (${missing[*]}); run this script as root" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v clang-14 > /dev/null || { echo "reluscope: error: clang-14 still missing" >&2; exit 1; }
