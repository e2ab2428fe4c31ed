#!/usr/bin/env bash
# Installs what the Slurm job scripts and their tests need (Debian packages):
# a single-machine Slurm (munge, slurmctld, slurmd, client), its PMIx plugin,
# and shellcheck. Idempotent; run as root. The CI script calls it:
#   bash scripts/install-slurm-deps.sh
set -euo pipefail
pkgs=(munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins
      shellcheck python3 python3-netcdf4 python3-numpy)
# srun --mpi=pmix needs the PMIx library that Open MPI was built against.
if apt-cache show libpmix2t64 >/dev/null 2>&1; then pkgs+=(libpmix2t64); else pkgs+=(libpmix2); fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "all Slurm test packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm-deps: error: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's packages start their daemons on install where an init system runs;
# the tests start their own copies with their own config, so keep them off.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
