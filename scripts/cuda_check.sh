#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: checks that CUDA gives what the CPU gives, and times when
# a GPU pays. CI has no GPU; run this by hand where one is (the torch wheel brings CUDA).
#   scripts/cuda_check.sh            # ~5 minutes after the build
# 1. CPU vs CUDA: the camera policy (conv encoder + the paper's 19-neuron NCP) acts, values
#    and back-propagates the same on both (agent/tests/cuda.rs; also the NCP alone).
# 2. A short run of configs/vehicle_camera.toml end to end on CUDA: imitation, then PPO.
# 3. Timing: training steps/s of configs/cartpole.toml and configs/vehicle_camera.toml on the
#    CPU kernels and on CUDA as the number of envs grows (8 ... 4096 for cartpole).
#
# A GPU machine without Rust or network can run binaries built elsewhere against its own
# PyTorch (same version): put `wormnet` and the test binaries `cuda` (agent) and
# `ncp_training` (ncp) in DIR and run `WORMNET_PREBUILT=DIR scripts/cuda_check.sh` with that
# PyTorch's lib directory on LD_LIBRARY_PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prebuilt="${WORMNET_PREBUILT:-}"
if [ -n "$prebuilt" ]; then
    prebuilt="$(cd "$prebuilt" && pwd)"
    cd "$here/.."
    W="$prebuilt/wormnet"
else
    "$here/setup"
    source "$here/env.sh"
    cd "$WORMNET_ROOT"
    build_wormnet
    W="$CARGO_TARGET_DIR/release/wormnet"
fi
# Runs one integration-test binary (package dir, test name, filter...), built now or prebuilt.
run_tests() {
    local package="$1" name="$2"; shift 2
    if [ -n "$prebuilt" ]; then
        (cd "$package" && "$prebuilt/$name" "$@")
    else
        cargo test --release -p "wormnet-$package" --test "$name" -- "$@"
    fi
}
info="$("$W" info)"
if ! grep -q "^cuda *available" <<<"$info"; then
    grep -i cuda <<<"$info" >&2 || true
    echo "cuda_check: no CUDA device here; run this on a machine with an NVIDIA GPU" >&2
    exit 2
fi
grep -i -E "cuda|torch" <<<"$info"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== 1. CPU vs CUDA outputs and gradients"
run_tests agent cuda --nocapture 2>&1 | grep -E "cpu vs cuda|test result|panicked"
run_tests ncp ncp_training cuda --nocapture 2>&1 | grep -E "test result|panicked"

echo "== 2. configs/vehicle_camera.toml on CUDA: imitation (2 rounds) then 20480 PPO steps"
start=$SECONDS
"$W" train configs/vehicle_camera.toml --device cuda --quiet --run-dir "$tmp/camera" \
    --total-steps 20480 --set imitation.rounds=2 2>&1 | tail -1
echo "   $((SECONDS - start)) s wall"
"$W" eval "$tmp/camera" --device cuda --episodes 50 --deterministic | tail -1

echo "== 3. training steps/s (rollout + update), CPU kernels vs CUDA"
printf "%-24s %8s %14s %14s\n" config envs cpu cuda
bench() {  # config envs extra-args...
    local config="$1" envs="$2"; shift 2
    local row=()
    for device in cpu cuda; do
        row+=("$("$W" bench train "$config" --updates 3 --set env.num_envs="$envs" \
            --set env.workers=8 --set run.device="$device" "$@" 2>/dev/null \
            | sed -n 's/^training steps\/s: *\([0-9.]*\).*/\1/p' | head -1)")
    done
    printf "%-24s %8s %14s %14s\n" "$(basename "$config")" "$envs" "${row[0]:-?}" "${row[1]:-?}"
}
for envs in 8 64 512 4096; do
    bench configs/cartpole.toml "$envs" --set ppo.minibatches=4
done
for envs in 8 64 256; do
    bench configs/vehicle_camera.toml "$envs" --set imitation.before_ppo=false --set ppo.minibatches=4
done
