#!/bin/bash
# usage: bash benchmarks/grid_in_one_process.sh OTHER_SRC [ROUNDS]   (default 3 rounds)
#
# One process training the 4 tiny runs of a 2-task x (sac, dac) grid in turn (`smiling experiment --workers 1`, as a
# grid worker does), with this checkout's src/ against OTHER_SRC (the src/ folder of another commit's worktree, e.g.
# `git worktree add /tmp/old <commit>`), both in this checkout's .venv. Rounds alternate the two after one warm-up
# each (the XLA compilation cache, in a temporary SMILING_CACHE, is then warm for both); each line gives wall, user
# and system seconds of the whole process. Run it from the repository root after `make install`, with nothing else
# running.
set -euo pipefail
cd "$(dirname "$0")/.."
other=$(cd "$1" && pwd)
rounds=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SMILING_CACHE="$work/cache"
.venv/bin/python - "$work/pm.npz" <<'PY'
import sys
import numpy as np
from smiling.data import Demos, save_npz
from smiling.envs import make_env
from smiling.envs.rollout import rollout
env = make_env("dmc:point_mass-easy", horizon=50)
rng = np.random.default_rng(0)
obs, act, rew = rollout(env, lambda o: rng.uniform(-1, 1, 2), 2, (0,))
save_npz(Demos(obs, act, rew.astype(np.float32), {"task": "dmc:point_mass-easy", "expert_return_mean": 5.0,
                                                "random_return_mean": 0.0}), sys.argv[1])
PY
grid() {  # SRC OUT
  rm -rf "$2"
  PYTHONPATH="$1" .venv/bin/python -m smiling.cli experiment --tasks dmc:ball_in_cup-catch,dmc:point_mass-easy \
    --algos sac,dac --seeds 0 --steps 100 --out "$2" --workers 1 --quiet --demos "dmc:point_mass-easy=$work/pm.npz" \
    --set horizon=50 seed_steps=50 update_every=10 eval_every=50 eval_episodes=1 checkpoint_every=50 \
    reward_update_every=50 sac.hidden_dims=32,32 sac.batch_size=32 dac.width=32 dac.steps=10 dac.batch_size=64 \
    > /dev/null 2>&1
}
echo "this: $(git rev-parse --short HEAD) ($PWD/src); other: $(git -C "$other" rev-parse --short HEAD 2>/dev/null) ($other);" \
     "$(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
grid "$PWD/src" "$work/a"; grid "$other" "$work/b"   # warm-up
TIMEFORMAT='%R wall  %U user  %S sys'
for r in $(seq "$rounds"); do
  echo -n "round $r this:  "; { time grid "$PWD/src" "$work/a"; } 2>&1
  echo -n "round $r other: "; { time grid "$other" "$work/b"; } 2>&1
done
