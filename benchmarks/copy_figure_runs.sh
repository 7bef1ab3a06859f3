#!/bin/bash
# usage: bash benchmarks/copy_figure_runs.sh SRC DST
# Copies every run directory's config.json and metrics.csv (no checkpoints, no logs) from a figure tree SRC
# (e.g. runs/figures/cpu) into DST, keeping the layout, so that DST can be committed (docs/figures/cpu) and the
# figures redrawn from it without any training: smiling figure N --draw-only --out DST
set -euo pipefail
src=${1:?usage: copy_figure_runs.sh SRC DST}; dst=${2:?usage: copy_figure_runs.sh SRC DST}
[ -d "$src" ] || { echo "copy_figure_runs.sh: $src: no such directory" >&2; exit 2; }
n=0
while IFS= read -r cfg; do
  run=$(dirname "$cfg"); rel=${run#"$src"/}
  [ -f "$run/metrics.csv" ] || continue
  mkdir -p "$dst/$rel"
  for f in config.json metrics.csv; do cp "$run/$f" "$dst/$rel/$f.tmp" && mv "$dst/$rel/$f.tmp" "$dst/$rel/$f"; done
  n=$((n + 1))
done < <(find "$src" -mindepth 2 -name config.json -not -path "*/checkpoints/*" | sort)
echo "copied $n runs from $src to $dst"
