#!/usr/bin/env bash
# The walker-walk ablation of docs/results.md (issue 20): SMILING with today's defaults (the error cap on), the
# whole paper preset, the earlier uncapped defaults, and the uncapped defaults with one setting switched to the
# authors' (README, "Paper preset and the switches between it and our defaults"). Bundled state-only demos,
# seed 0 (a seed of the choosing set, never a held-out one), 100k env steps, one run per row.
#
#   bash benchmarks/walker_ablation.sh OUT                 # every row, one after another, in OUT/<row>
#   bash benchmarks/walker_ablation.sh OUT ddpm batch      # only these rows
#   CORE=1 bash benchmarks/walker_ablation.sh OUT fifo     # pinned to core 1 (taskset), as the results were run
#
# A row whose directory holds a run is resumed (a finished one returns at once), so the script can be rerun
# after an interruption. Then: python benchmarks/summarize_learning.py OUT/<row> for each row.
set -euo pipefail
OUT=${1:?usage: bash benchmarks/walker_ablation.sh OUT [ROW ...]}
shift
W="--task dmc:walker-walk --steps 100000 --seed 0 --eval-episodes 10 --checkpoint-every 20000"
U="--smiling.no-cap-errors"
declare -A ROWS=(
  [fix]=""
  [uncapped]="$U"
  [paper]="--preset paper --relabel update"
  [raw]="$U --smiling.no-standardize"
  [ddpm]="$U --smiling.score.schedule.kind ddpm --smiling.score.schedule.steps 5000"
  [batch]="$U --smiling.normalization batch"
  [fifo]="$U --smiling.memory-kind fifo --smiling.memory 200000"
  [current]="$U --smiling.score-state current"
  [k500]="$U --smiling.num-levels 500 --relabel update"
)
ORDER=(fix uncapped paper raw ddpm batch fifo current k500)
[ $# -gt 0 ] && ORDER=("$@")
PIN=()
[ -n "${CORE:-}" ] && PIN=(taskset -c "$CORE")  # expanded as ${PIN[@]+...}: an empty array under set -u (bash < 4.4)
for row in "${ORDER[@]}"; do
  [ -v "ROWS[$row]" ] || { echo "unknown row '$row'; rows: ${!ROWS[*]}" >&2; exit 2; }
  dir="$OUT/$row"
  if [ -f "$dir/config.json" ]; then
    echo "== $row: resuming $dir"
    ${PIN[@]+"${PIN[@]}"} smiling imitate --quiet --resume "$dir"
  else
    echo "== $row: smiling imitate $W ${ROWS[$row]}"
    # shellcheck disable=SC2086  # the flags are meant to split
    ${PIN[@]+"${PIN[@]}"} smiling imitate --quiet --out "$dir" $W ${ROWS[$row]}
  fi
done
