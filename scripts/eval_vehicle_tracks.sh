#!/usr/bin/env bash
# Drives a trained vehicle policy once around each held-out track (the config's eval_seeds) and
# prints the fraction of laps completed: the lane-keeping acceptance figure.
#   scripts/eval_vehicle_tracks.sh runs/<vehicle run> [FIRST END]   (default 1000000 1000050)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="${1:?usage: scripts/eval_vehicle_tracks.sh RUN_DIR [FIRST END]}"
first="${2:-1000000}"
end="${3:-1000050}"
"$here/wormnet" info >/dev/null
source "$here/env.sh"
laps=0
total=0
for ((track = first; track < end; track++)); do
    line=$("$CARGO_TARGET_DIR/release/wormnet" eval "$run" --episodes 1 --deterministic --json \
        --option "track_seed=$track")
    ok=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["success_rate"] == 1.0))' "$line")
    laps=$((laps + ok))
    total=$((total + 1))
    [ "$ok" = 1 ] || echo "track $track: no lap" >&2
done
echo "laps completed on $laps of $total held-out tracks"
