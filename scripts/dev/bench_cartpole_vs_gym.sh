#!/usr/bin/env bash
# The issue-4 throughput comparison, side by side on this machine: wormnet's VecEnv running
# cartpole (16 envs, 2 workers, random actions) and Gymnasium's CartPole-v1 in a
# SyncVectorEnv of 16 (scripts/dev/bench_gym_cartpole.py), then the ratio.
#   scripts/dev/bench_cartpole_vs_gym.sh [seconds]
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-5}"
"$here/../wormnet" info >/dev/null   # builds the binary the README commands build
source "$here/../env.sh"
ours=$("$CARGO_TARGET_DIR/release/wormnet" bench env cartpole --envs 16 --workers 2 --seconds "$seconds" --json)
gym=$("$WORMNET_VENV/bin/python" "$here/bench_gym_cartpole.py" --envs 16 --seconds "$seconds" --json)
echo "$ours"
echo "$gym"
"$WORMNET_VENV/bin/python" - "$ours" "$gym" <<'PY'
import json, sys
ours, gym = (json.loads(a) for a in sys.argv[1:3])
print(f"wormnet VecEnv cartpole {ours['envs']} envs / {ours['workers']} workers: {ours['steps_per_sec']:,.0f} steps/s; "
      f"Gymnasium SyncVectorEnv({gym['envs']}): {gym['steps_per_sec']:,.0f} steps/s; "
      f"ratio {ours['steps_per_sec'] / gym['steps_per_sec']:.1f}x")
PY
