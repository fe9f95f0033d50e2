#!/usr/bin/env bash
# The env template builds outside the repository without compiling Bevy, Rapier or tch again:
# copies examples/lander/ and wormnet's Cargo.lock into a temporary folder, as docs/envs.md says
# a user does, points its paths at this checkout and builds it against the shared target dir.
# Fails naming every Bevy, Rapier or tch crate that `cargo build -v` shows being compiled.
#   scripts/dev/check_template_build.sh      (scripts/test runs it after the tests)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/env.sh"
root="$WORMNET_ROOT"
copy="$(mktemp -d)/my-lander"
trap 'rm -rf "$(dirname "$copy")"' EXIT
mkdir -p "$copy"
cp -r "$root/examples/lander/." "$copy/"
cp "$root/Cargo.lock" "$copy/Cargo.lock"
# The three path dependencies, pointed at this checkout (a user writes their own paths).
sed -i "s#path = \"\.\./\.\./#path = \"$root/#" "$copy/Cargo.toml"
grep -q "path = \"$root/cli\"" "$copy/Cargo.toml"
started=$(date +%s)
log="$(dirname "$copy")/build.log"
if ! (cd "$copy" && cargo build --release -v --offline >"$log" 2>&1); then
    tail -20 "$log" >&2
    echo "check_template_build: the copied template did not build (log above)" >&2
    exit 1
fi
heavy=$(grep -oE 'Running `[^`]*rustc --crate-name (bevy[a-z0-9_]*|rapier2d|parry2d|tch|torch_sys|wgpu[a-z0-9_]*|naga) ' "$log" \
    | grep -oE -- '--crate-name [a-z0-9_]+' | sort -u | cut -d' ' -f2 | tr '\n' ' ' || true)
fresh=$(grep -cE '^ +Fresh (bevy|tch|torch-sys|bevy_rapier2d) ' "$log" || true)
if [ -n "$heavy" ]; then
    echo "check_template_build: the copied template compiled again: $heavy" >&2
    echo "  (its [profile.release] or Cargo.lock differs from wormnet's?)" >&2
    exit 1
fi
if [ "$fresh" -lt 3 ]; then
    echo "check_template_build: expected Bevy, Rapier and tch to be reused (Fresh), found $fresh" >&2
    exit 1
fi
echo "check_template_build: the template copied out of the repository built in $(( $(date +%s) - started )) s, reusing Bevy, Rapier and tch"
