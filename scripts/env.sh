# Sourced by the other scripts: decides where the venv (libtorch) and the cargo target dir live,
# and exports what the build needs. Nothing here installs anything.
#
#   WORMNET_CACHE  a directory outside the clone shared by every clone on this machine
#                  (default ~/.cache/wormnet). When it exists, its venv/ and target/ are used,
#                  so a second clone (or CI) builds incrementally. When it does not, the clone's
#                  own .venv/ and target/ are used and nothing outside the clone is touched.
#   LIBTORCH       an existing libtorch 2.13.0 (a directory holding lib/libtorch.so); when set,
#                  no venv is made and the build links against it.

WORMNET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORMNET_CACHE="${WORMNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wormnet}"
WORMNET_TORCH_VERSION="2.13.0"
WORMNET_RAY_VERSION="2.60.0"

if [ -d "$WORMNET_CACHE" ]; then
    WORMNET_VENV="${WORMNET_VENV:-$WORMNET_CACHE/venv}"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WORMNET_CACHE/target}"
else
    WORMNET_VENV="${WORMNET_VENV:-$WORMNET_ROOT/.venv}"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WORMNET_ROOT/target}"
fi

if [ -n "${LIBTORCH:-}" ]; then
    export LIBTORCH
    unset LIBTORCH_USE_PYTORCH
else
    # torch-sys asks the venv's python where libtorch is and which C++ ABI it uses.
    export VIRTUAL_ENV="$WORMNET_VENV"
    export PATH="$WORMNET_VENV/bin:$PATH"
    export LIBTORCH_USE_PYTORCH=1
fi
# The Python `wormnet sweep --executor ray` drives Ray with (scripts/setup --ray installs it).
export WORMNET_PYTHON="${WORMNET_PYTHON:-$WORMNET_VENV/bin/python}"
# Two cores here: let cargo use them all, and keep the same flags for every command so that
# nothing is rebuilt between `scripts/wormnet` and `scripts/test`.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

# The one build of the `wormnet` binary every script uses: the same package, profile and
# features as `scripts/test`, so nothing heavy is compiled twice. The first build is long and
# says so; later ones are quiet unless something is rebuilt.
build_wormnet() {
    (cd "$WORMNET_ROOT" && link_target && {
        if [ -x "$CARGO_TARGET_DIR/release/wormnet" ]; then
            cargo build --release --quiet -p wormnet-cli --features render --bin wormnet
        else
            echo "wormnet: first build: libtorch bindings, Bevy, Rapier and wormnet (about 16 min on 2 cores, once per machine; later builds take seconds)" >&2
            cargo build --release -p wormnet-cli --features render --bin wormnet
        fi
    })
}

# With the shared cache, ./target is a link to it, so ./target/release/wormnet works as usual.
link_target() {
    if [ "$CARGO_TARGET_DIR" != "$WORMNET_ROOT/target" ] && [ ! -e "$WORMNET_ROOT/target" ] \
        && [ ! -L "$WORMNET_ROOT/target" ]; then
        mkdir -p "$CARGO_TARGET_DIR"
        ln -s "$CARGO_TARGET_DIR" "$WORMNET_ROOT/target"
    fi
}
