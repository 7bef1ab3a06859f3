#!/bin/bash
# usage: bash benchmarks/copy_figure_runs.sh SRC DST
# Copies the config.json and metrics.csv (no checkpoints, no logs) of every *finished* run directory of a figure
# tree SRC (e.g. runs/figures/cpu) into DST, keeping the layout, so that DST can be committed (docs/figures/cpu),
# the figures redrawn from it without any training (smiling figure N --draw-only --out DST), and a new figure
# tree seeded from it (copy it back: `smiling figure N` counts the copied runs finished and trains the rest).
# Unfinished runs are left out (named on stderr): a copy without checkpoints could not be continued.
# Python: $PYTHON, else the checkout's .venv, else python3.
set -euo pipefail
src=${1:?usage: copy_figure_runs.sh SRC DST}; dst=${2:?usage: copy_figure_runs.sh SRC DST}
src=${src%/}
[ -d "$src" ] || { echo "copy_figure_runs.sh: $src: no such directory" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}  # the environment smiling is installed in
[ -x "$python" ] || python=python3
n=0
while IFS= read -r run; do
  rel=${run#"$src"/}
  mkdir -p "$dst/$rel"
  for f in config.json metrics.csv; do cp "$run/$f" "$dst/$rel/$f.tmp" && mv "$dst/$rel/$f.tmp" "$dst/$rel/$f"; done
  n=$((n + 1))
done < <("$python" - "$src" <<'EOF'
import sys
from pathlib import Path
from smiling.experiments.grid import run_state
from smiling.utils.io import read_json
for cfg in sorted(Path(sys.argv[1]).rglob("config.json")):
    run = cfg.parent
    if "checkpoints" in run.parts or not (run / "metrics.csv").exists():
        continue
    if run_state(run, read_json(cfg)["config"]["steps"]) == "done":
        print(run)
    else:
        print(f"copy_figure_runs.sh: left out {run}: not finished", file=sys.stderr)
EOF
)
echo "copied $n finished runs from $src to $dst"
