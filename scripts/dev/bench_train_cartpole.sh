#!/usr/bin/env bash
# Training speed on CartPole-v1 without velocities, back to back on this machine:
# sb3-contrib RecurrentPPO (RL Zoo's CartPoleNoVel settings, LSTM) and `wormnet train
# configs/cartpole.toml`, both with 8 envs x 32 steps per rollout and one torch thread.
# Prints both figures (training steps/s = rollout + update, no evaluation) and their ratio, then
# wormnet on one thread (--threads 1).
#   scripts/dev/bench_train_cartpole.sh [STEPS]      (default 32768)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/../setup" --refs
source "$here/../env.sh"
cd "$WORMNET_ROOT"
"$here/../wormnet" info >/dev/null   # builds the binary the README commands build
steps="${1:-32768}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

sb3=$(python "$here/bench_sb3_cartpole.py" --steps "$steps" --json)
# sb3 runs on one thread (DummyVecEnv, one torch thread). wormnet uses every core by default
# (run.threads); the last line is wormnet on one thread (--threads 1).
"$CARGO_TARGET_DIR/release/wormnet" train configs/cartpole.toml --total-steps "$steps" \
    --run-dir "$tmp/run" --quiet 2>/dev/null
"$CARGO_TARGET_DIR/release/wormnet" train configs/cartpole.toml --total-steps "$steps" \
    --run-dir "$tmp/one" --threads 1 --quiet 2>/dev/null
python - "$sb3" "$tmp/run/metrics.csv" "$tmp/one/metrics.csv" <<'PY'
import csv, json, sys
sb3 = json.loads(sys.argv[1])
def sps(path):
    rows = list(csv.DictReader(open(path)))
    return float(rows[-1]["charts/SPS"]), int(rows[-1]["global_step"])
ours, steps = sps(sys.argv[2])
alone, _ = sps(sys.argv[3])
base = sb3["steps_per_sec"]
print(f"sb3-contrib RecurrentPPO   {base:8.0f} training steps/s  ({sb3['steps']} steps)")
print(f"wormnet train (cartpole)   {ours:8.0f} training steps/s  ({steps} steps)")
print(f"ratio                      {ours / base:8.1f}x")
print(f"wormnet, --threads 1       {alone:8.0f} training steps/s  = {alone / base:.1f}x")
PY
