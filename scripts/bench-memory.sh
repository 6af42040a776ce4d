#!/usr/bin/env bash
# A node's memory over time (issue #14): a 4-validator alliance at 2,000
# tx/s for 30 minutes, each node's RSS printed per minute. After a 5-minute
# warm-up every node must stay within its 1 GiB budget and grow by less
# than 5 %; the script exits non-zero otherwise. Needs the machine to itself
# (2,000 tx/s takes most of two cores).
#
#   scripts/bench-memory.sh                       # the issue's run, ~35 min
#   scripts/bench-memory.sh --minutes 8           # shorter
#   scripts/bench-memory.sh --config sled.toml    # e.g. store_engine = "sled"
#
# Every option is passed to `alliance-bench memory` (see its --help):
# --rate, --minutes, --warmup-minutes, --budget-mib, --growth-max-pct,
# --accounts, --validators, --config. Results: target/bench-memory/ (JSON
# and the printed table).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p alliance-node --bin alliance-node
cargo build --release -q -p alliance-tests --bin alliance-bench
out="$target/bench-memory"
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u)" | tee "$out/$stamp.txt"
# alliance-bench starts the alliance-node built beside it.
"$target/release/alliance-bench" memory --out "$out/$stamp.json" "$@" \
  | tee -a "$out/$stamp.txt"
