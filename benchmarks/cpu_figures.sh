#!/bin/bash
# usage: bash benchmarks/cpu_figures.sh train [WORKERS] [FIGURE ...]   (default: 2 workers; figures 3 5 4)
#        bash benchmarks/cpu_figures.sh collect
#        bash benchmarks/cpu_figures.sh status
#
# The cpu figures over several sittings, with docs/figures/cpu (config.json + metrics.csv of every finished run,
# committed) as what carries over from one to the next:
#   train    copies the committed finished runs into runs/figures/cpu (where a run is not there already), then
#            runs `smiling figure N` for each figure in turn: finished runs are skipped, unfinished ones resume
#            from their checkpoints, the rest start (WORKERS runs at once); a stop (Ctrl-C, SIGTERM) checkpoints.
#   collect  copies the finished runs of runs/figures/cpu into docs/figures/cpu and redraws every figure there
#            (--draw-only: figure<N>.md lists what is not finished yet).
#   status   says for each figure how far its runs in runs/figures/cpu have come (--dry-run: trains nothing).
# Run it from the repository root after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
smiling=".venv/bin/python -m smiling.cli"
tree=runs/figures/cpu
docs=docs/figures/cpu
case "${1:-}" in
  train)
    workers=${2:-2}
    shift $(( $# < 2 ? $# : 2 ))
    figures=("${@:-3 5 4}")
    mkdir -p "$tree"
    fresh=$(mktemp -d)
    trap 'rm -rf "$fresh"' EXIT
    bash benchmarks/copy_figure_runs.sh "$docs" "$fresh" > /dev/null
    while IFS= read -r cfg; do  # the committed runs this tree lacks (never overwrite a run that is here)
      rel=$(dirname "${cfg#"$fresh"/}")
      [ -e "$tree/$rel/config.json" ] || { mkdir -p "$tree/$rel"; cp "$fresh/$rel/"* "$tree/$rel/"; }
    done < <(find "$fresh" -name config.json | sort)
    for n in ${figures[*]}; do
      $smiling figure "$n" --workers "$workers" --out "$tree"
    done
    ;;
  collect)
    bash benchmarks/copy_figure_runs.sh "$tree" "$docs"
    for n in 3 4 5; do
      $smiling figure "$n" --draw-only --out "$docs" || true  # a figure with no evaluated run yet says so
    done
    ;;
  status)
    for n in 3 4 5; do
      $smiling figure "$n" --dry-run --out "$tree" | grep -v '^  dmc:'
    done
    ;;
  *)
    sed -n 2,14p "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
