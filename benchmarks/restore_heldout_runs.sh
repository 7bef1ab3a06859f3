#!/bin/bash
# usage: bash benchmarks/restore_heldout_runs.sh OLD_D968735 OLD_BC0C126 DST
#
# Rebuilds, as run directories of `smiling figure 3` (config.json + metrics.csv, no checkpoints), the held-out
# SMILING and DAC runs of docs/results.md whose raw metrics are committed under docs/img/ but whose run
# directories were lost with the machine they ran on:
#   SMILING and DAC, cheetah-run and walker-walk, seeds 2-4, 200k env steps, trained at commit d968735 by
#     smiling imitate --task TASK --steps 200000 --seed S --eval-episodes 10 --checkpoint-every 20000 [--algo dac]
#   DAC, ball_in_cup-catch, seeds 2-4, 100k env steps, trained at commit bc0c126 by
#     smiling figure 3 --tasks dmc:ball_in_cup-catch --algos dac
# OLD_D968735 and OLD_BC0C126 are checkouts of those commits with `make install` done. Each run's config.json is
# the one its own command writes at its own commit: the command is started in a scratch directory and stopped
# as soon as it has written config.json (nothing of it is kept but that file); metrics.csv is the committed copy
# of the run's metrics. config.json gets a key "restored" naming that copy; d968735 recorded no source commit in
# config.json (runs do since 00739b5), so for those runs "commit" is set to the commit they trained at, and
# "restored" says so. (Nor did it record the demos' expert/random returns: figures then read them from the
# bundled demos, the same ones.) Then
# `smiling figure 3 --out DST` (from this checkout) checks every restored run's settings against the figure's
# (it refuses runs with other settings) and counts them finished.
set -euo pipefail
old_d=${1:?usage: restore_heldout_runs.sh OLD_D968735 OLD_BC0C126 DST}
old_b=${2:?usage: restore_heldout_runs.sh OLD_D968735 OLD_BC0C126 DST}
dst=${3:?usage: restore_heldout_runs.sh OLD_D968735 OLD_BC0C126 DST}
here=$(cd "$(dirname "$0")/.." && pwd)
for c in "$old_d:d968735" "$old_b:bc0c126"; do
  dir=${c%%:*}; want=${c##*:}
  got=$(git -C "$dir" rev-parse --short=7 HEAD)
  [ "$got" = "$want" ] || { echo "restore_heldout_runs.sh: $dir is at $got, not $want" >&2; exit 2; }
  [ -x "$dir/.venv/bin/python" ] || { echo "restore_heldout_runs.sh: $dir has no .venv (make install)" >&2; exit 2; }
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# config_of CHECKOUT RUN_DIR COMMAND...: run COMMAND in CHECKOUT until RUN_DIR/config.json exists, then stop it
config_of() {
  local dir=$1 run=$2; shift 2
  (cd "$dir" && exec "$@" > "$scratch/log.txt" 2>&1) &
  local pid=$!
  until [ -f "$run/config.json" ]; do
    kill -0 $pid 2> /dev/null || { echo "restore_heldout_runs.sh: $* ended before writing config.json:" >&2;
                                   tail -5 "$scratch/log.txt" >&2; exit 1; }
    sleep 1
  done
  kill -KILL $pid 2> /dev/null || true
  wait $pid 2> /dev/null || true
}

# restore TASK SLUG LABEL SEED CSV RUN_DIR COMMIT
restore() {
  local task=$1 slug=$2 label=$3 seed=$4 csv=$5 run=$6
  local out="$dst/$slug/$label/s$seed"
  mkdir -p "$out"
  "$here/.venv/bin/python" - "$run/config.json" "$out/config.json" "docs/img/$csv" "$7" <<'EOF'
import json, sys
from smiling.utils.io import atomic_write_json
saved, note = json.load(open(sys.argv[1])), {"metrics_from": sys.argv[3], "by": "benchmarks/restore_heldout_runs.sh"}
if not saved.get("commit"):
    saved["commit"], note["commit"] = sys.argv[4], "not recorded by the run's code: set to the commit it trained at"
atomic_write_json(sys.argv[2], {**saved, "restored": note})
EOF
  cp "$here/docs/img/$csv" "$out/metrics.csv.tmp" && mv "$out/metrics.csv.tmp" "$out/metrics.csv"
  echo "restored $out ($(git -C "$here" log -1 --format=%h -- "docs/img/$csv") docs/img/$csv)"
}

for t in cheetah-run:cheetah walker-walk:walker; do
  task=${t%%:*}; short=${t##*:}
  for algo in smiling dac; do
    csv_algo=$([ $algo = smiling ] && echo smiling-cap || echo dac)
    for s in 2 3 4; do
      run="$scratch/$algo-$short-s$s"
      config_of "$old_d" "$run" .venv/bin/python -m smiling.cli imitate --task dmc:$task --algo $algo \
          --steps 200000 --seed $s --eval-episodes 10 --checkpoint-every 20000 --out "$run"
      restore dmc:$task dmc-$task $algo $s "$csv_algo-$short-s$s.metrics.csv" "$run" "$(git -C "$old_d" rev-parse HEAD)"
    done
  done
done
for s in 2 3 4; do
  tree="$scratch/fig-s$s"
  config_of "$old_b" "$tree/dmc-ball_in_cup-catch/dac/s$s" .venv/bin/python -m smiling.cli figure 3 \
      --tasks dmc:ball_in_cup-catch --algos dac --seeds $s --workers 1 --out "$tree"
  restore dmc:ball_in_cup-catch dmc-ball_in_cup-catch dac $s "dac-bic-s$s.metrics.csv" \
      "$tree/dmc-ball_in_cup-catch/dac/s$s" "$(git -C "$old_b" rev-parse HEAD)"
done
