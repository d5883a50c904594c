#!/usr/bin/env bash
# Regenerate the example figures of the README (docs/figures/<protocol>.png): run each example
# protocol into a temporary folder and draw it with `plastic plot` (needs the plot extra:
# pip install -e '.[plot]').
#
#   docs/make_figures.sh                 # the protocols listed below that exist
#   docs/make_figures.sh protocols/x.yaml ...
#   PLASTIC=.venv/bin/plastic docs/make_figures.sh
#
# The figures are deterministic: the same protocols, seeds and package versions give the same
# PNG bytes, so a rerun changes docs/figures/ only when the results (or matplotlib) changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PLASTIC:-}" ]; then
  if command -v plastic >/dev/null 2>&1; then PLASTIC=plastic
  elif [ -x .venv/bin/plastic ]; then PLASTIC=.venv/bin/plastic
  else echo "make_figures.sh: no 'plastic' on PATH; set PLASTIC=/path/to/plastic" >&2; exit 2
  fi
fi

if [ $# -eq 0 ]; then
  set --
  for name in stdp_window song2000 ltp_phases sjostrom2001_triplet graupner2012_stdp \
              graupner2012_frequency receptor_hfs receptor_tagging_stet_wtet bcm_selectivity oja_pca hebb_growth rate_network_sigmoid \
              markram1996_redistribution tsodyks_markram_steady_state; do
    if [ -f "protocols/$name.yaml" ]; then set -- "$@" "protocols/$name.yaml"; fi
  done
fi

out=docs/figures
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for protocol in "$@"; do
  name=$(basename "$protocol" .yaml)
  # run from the repository root with a relative protocol path, so that run.json names
  # protocols/<name>.yaml and `plastic plot` finds protocols/<name>.reference.csv
  "$PLASTIC" run "$protocol" --out "$work/$name" --quiet
  "$PLASTIC" plot "$work/$name" --out "$out/$name.png"
done
