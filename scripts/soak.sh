#!/usr/bin/env bash
# Long fault soak (docs/reliability.md): SIGKILL a random validator of four
# every few seconds under load for SECONDS (default 300), restarting it each
# time; then check that every transaction the API reported finalized is on
# every node at the same height, position and block, that no height forked,
# and that all nodes converge to one tip and state root.
#
#   scripts/soak.sh [SECONDS]          # release build
#   SOAK_PROFILE=dev scripts/soak.sh   # reuse the debug build
#   ALLIANCE_SOAK_SEED=N scripts/soak.sh   # replay a fault schedule
#
# The binaries are copied to a private directory first, so a rebuild in the
# same target directory during the soak cannot swap them under its feet.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${ALLIANCE_SOAK_SECS:-300}}"
profile="${SOAK_PROFILE:-release}"
case "$profile" in
  dev) flags=(); dir=debug ;;
  release) flags=(--release); dir=release ;;
  *) flags=(--profile "$profile"); dir="$profile" ;;
esac
target="${CARGO_TARGET_DIR:-target}"

cargo build "${flags[@]}" -p alliance-node
exe=$(cargo test "${flags[@]}" -p alliance-tests --test faults --no-run 2>&1 |
  sed -n 's/.*Executable tests\/faults.rs (\(.*\))/\1/p' | tail -1)
[ -x "$exe" ] || { echo "soak: could not build the faults test" >&2; exit 1; }

work=$(mktemp -d /tmp/alliance-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/deps"
cp "$exe" "$work/deps/faults"
cp "$target/$dir/alliance-node" "$work/alliance-node"

echo "soak: ${secs} s of kill -9 under load ($profile build, copies in $work)"
ALLIANCE_SOAK_SECS="$secs" "$work/deps/faults" kill9_soak_loses_nothing_and_never_forks \
  --exact --nocapture --test-threads 1
