#!/usr/bin/env bash
# Issue #14, second criterion: a generated chain of 10,000,000 accounts and
# 20,000,000 receipts (written straight into a store, no consensus), then,
# in a second process as a node would: open it, serve balance queries and
# proofs, commit blocks of 1,000 transfers; open time, latencies, commit time
# per block (verify, execute, store) and RSS, in one run. Needs the machine
# to itself, about 25 GB of disk (redb) and about an hour: see
# docs/benchmarks.md for the figures.
#
#   scripts/bench-big-state.sh                      # the issue's size
#   scripts/bench-big-state.sh --accounts 1000000 --receipts 2000000 --bits 19
#   ENGINE=redb scripts/bench-big-state.sh ...      # another engine (lmdb:
#                                                   # built with extra-engines)
#
# Options go to `alliance-bench big-state-generate` (--accounts, --receipts,
# --signers, --bits); BLOCKS and QUERIES set the run. The store is kept in
# $DIR (default target/big-state); delete it afterwards (tens of GB).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
engine="${ENGINE:-fjall}"
features=()
[ "$engine" = lmdb ] && features=(--features extra-engines)
cargo build --release -q -p alliance-tests --bin alliance-bench "${features[@]}"
dir="${DIR:-$target/big-state}"
accounts=10000000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --accounts ] && accounts="${args[$((i + 1))]}"
done
rm -rf "$dir"
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u), engine $engine" | tee "$dir/$stamp.txt"
"$target/release/alliance-bench" big-state-generate --engine "$engine" --dir "$dir/db" \
  --out "$dir/generate.json" "$@" | tee -a "$dir/$stamp.txt"
# A fresh process: the open time and RSS are a node's starting on this store.
"$target/release/alliance-bench" big-state-run --engine "$engine" --dir "$dir/db" \
  --accounts "$accounts" --blocks "${BLOCKS:-96}" --queries "${QUERIES:-10000}" \
  --out "$dir/run.json" 2>&1 | tee -a "$dir/$stamp.txt"
