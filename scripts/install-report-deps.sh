#!/usr/bin/env bash
# Installs what analysis/report.py and its test (tests/t_report.sh) need, from
# Debian: Python 3 with xarray, netCDF4, matplotlib and numpy, and chromium
# (the test loads the report page in headless Chromium). Idempotent; run as
# root. The CI script calls it:
#   bash scripts/install-report-deps.sh
set -euo pipefail
pkgs=(python3 python3-xarray python3-netcdf4 python3-matplotlib python3-numpy chromium)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "all report packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-report-deps: error: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Recommends would pull in a desktop's worth of packages; the fonts chromium
# needs to draw text come with its own dependencies.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
