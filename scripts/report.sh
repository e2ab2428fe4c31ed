#!/usr/bin/env bash
# make report: the analysis report of the demo's dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
ds=${1:-runs/demo/dataset.nc}
out=${2:-runs/demo/report}
[ -f "$ds" ] || { echo "reluscope: error: $ds: no dataset (run make demo first)" >&2; exit 1; }
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m analysis.report "$ds" -o "$out"
echo "report: $(realpath "$out")/index.html"
