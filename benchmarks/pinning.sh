#!/bin/bash
# usage: bash benchmarks/pinning.sh [ROUNDS] [STEPS]   (default 3 rounds of 3000-step runs)
#
# Two SAC trainings at once on a 2-CPU machine, each kept to its own CPU (taskset: what `smiling experiment`'s
# local pool does with 2 workers on 2 CPUs) against both free to use both CPUs (each XLA thread pool then spans
# both and the two runs contend for them). Rounds alternate pinned and free; each line gives the wall seconds of
# the pair (both processes, start-up included) and each run's own training wall time (metrics.csv). Run it from
# the repository root after `make install`, with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-3000}
smiling=.venv/bin/smiling
args=(train-expert --task dmc:cheetah-run --steps "$steps" --seed-steps 1000 --update-every 50 --eval-every 1000000
      --checkpoint-every 1000000 --eval-episodes 1 --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "commit $(git rev-parse --short HEAD), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds rounds of 2 x $steps steps"
for r in $(seq "$rounds"); do
  for mode in pinned free; do
    d="$work/$mode-$r"
    start=$(date +%s%N)
    if [ "$mode" = pinned ]; then
      taskset -c 0 $smiling "${args[@]}" --out "$d/a" > /dev/null 2>&1 &
      taskset -c 1 $smiling "${args[@]}" --seed 1 --out "$d/b" > /dev/null 2>&1 &
    else
      $smiling "${args[@]}" --out "$d/a" > /dev/null 2>&1 &
      $smiling "${args[@]}" --seed 1 --out "$d/b" > /dev/null 2>&1 &
    fi
    wait
    end=$(date +%s%N)
    runs=$(for x in a b; do tail -1 "$d/$x/metrics.csv" | cut -d, -f3; done | tr '\n' ' ')
    ms=$(( (end - start) / 1000000 ))
    printf 'round %s %-6s pair %d.%01d s; training wall time of each run (s): %s\n' "$r" "$mode" \
      $(( ms / 1000 )) $(( ms % 1000 / 100 )) "$runs"
  done
done
