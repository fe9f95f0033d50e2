#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: checks that CUDA gives what the CPU gives, and times when
# a GPU pays. CI has no GPU; run this by hand where one is (the torch wheel brings CUDA).
#   scripts/cuda_check.sh            # CUDA runs of these small policies are slow (README,
#                                    # "On a GPU"): allow 15 minutes or more after the build
# 1. CPU vs CUDA: the camera policy (conv encoder + the paper's 19-neuron NCP) acts, values
#    and back-propagates the same on both (agent/tests/cuda.rs; also the NCP alone).
# 2. Timing: training steps/s of configs/cartpole.toml and configs/vehicle_camera.toml on the
#    CPU kernels and on CUDA as the number of envs grows (8 ... 4096 for cartpole).
# 3. A short run of configs/vehicle_camera.toml end to end on CUDA: imitation, then PPO.
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
for tests in "agent cuda" "ncp ncp_training cuda"; do
    # shellcheck disable=SC2086 # package, test binary and filter
    out="$(run_tests $tests --nocapture 2>&1 || true)"
    grep -E "cpu vs cuda|test result|panicked|no CUDA device" <<<"$out" || true
    if grep -q "no CUDA device" <<<"$out"; then
        echo "cuda_check: the tests did not see the CUDA device that \`wormnet info\` sees" >&2
        exit 1
    fi
    grep -q "test result: ok" <<<"$out" || { echo "cuda_check: $tests failed" >&2; exit 1; }
done

echo "== 2. training steps/s (rollout + update), CPU kernels vs CUDA"
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

echo "== 3. configs/vehicle_camera.toml on CUDA: imitation (1 round) then 4096 PPO steps"
start=$SECONDS
"$W" train configs/vehicle_camera.toml --device cuda --quiet --run-dir "$tmp/camera" \
    --total-steps 4096 --set imitation.rounds=1 2>&1 | tail -1
echo "   $((SECONDS - start)) s wall"
"$W" eval "$tmp/camera" --device cuda --episodes 50 --deterministic | tail -1
