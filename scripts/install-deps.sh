#!/usr/bin/env bash
# Installs every Debian package reluscope needs (idempotent; run as root),
# then fetches the bundled Brown corpus once into the cache.
#   bash scripts/install-deps.sh            build + test + demo packages
#   WITH_BENCH=1 ...                        also python3-torch (make bench)
set -euo pipefail
pkgs=(build-essential make pkg-config git ca-certificates
      openmpi-bin libopenmpi-dev libopenblas-dev libscalapack-openmpi-dev
      libnetcdf-dev netcdf-bin zlib1g-dev
      python3 python3-xarray python3-netcdf4 python3-matplotlib python3-numpy
      nodejs npm)
[ "${WITH_BENCH:-0}" = 1 ] && pkgs+=(python3-torch)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (e.g. a preinstalled Node.js): accept those.
if command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<< "${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "reluscope: error: missing packages (${missing[*]}); run this script as root" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "all Debian packages present"
fi
if [ "${SKIP_CORPUS:-0}" != 1 ] && [ -f "$(dirname "$0")/fetch-brown.sh" ]; then
    bash "$(dirname "$0")/fetch-brown.sh" || echo "reluscope: warning: could not fetch the Brown corpus (make demo needs it)" >&2
fi
