#!/usr/bin/env bash
# Benchmarks of a real alliance on this machine (issue #8): throughput,
# finality latency, CPU, memory and disk of 4, 7 and 10 validator processes
# on loopback under an open-loop load of signed transfers and redemptions;
# the machine's ceiling (ed25519 verify and batch-verify rates, sled's
# flushed batch writes) measured in the same run; the same transfer workload
# against PostgreSQL for comparison. Writes JSON to target/bench/ and the
# tables into docs/benchmarks.md (between generated markers: a rerun
# replaces them).
#
# Usage:
#   scripts/bench.sh            full run (about 30 minutes)
#   scripts/bench.sh --quick    short steps, 4 validators only (a few minutes)
# Environment: BENCH_VALIDATORS="4 7 10", BENCH_RATES=..., BENCH_STEP_SECS=...,
# BENCH_HEADLINE_SECS=..., BENCH_ACCOUNTS=..., BENCH_PG_SECS=...,
# BENCH_NO_DOCS=1 (print the tables, leave docs alone).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
[ "${1:-}" = "--quick" ] && MODE=quick
if [ "$MODE" = quick ]; then
  VALIDATORS="${BENCH_VALIDATORS:-4}"
  RATES="${BENCH_RATES:-100,1000,2000,3000}"
  STEP_SECS="${BENCH_STEP_SECS:-10}"
  HEADLINE_SECS="${BENCH_HEADLINE_SECS:-20}"
  ACCOUNTS="${BENCH_ACCOUNTS:-6000}"
  PG_SECS="${BENCH_PG_SECS:-15}"
  CEILING_SECS=1
else
  VALIDATORS="${BENCH_VALIDATORS:-4 7 10}"
  RATES="${BENCH_RATES:-100,500,1000,2000,3000,4000}"
  STEP_SECS="${BENCH_STEP_SECS:-20}"
  HEADLINE_SECS="${BENCH_HEADLINE_SECS:-60}"
  ACCOUNTS="${BENCH_ACCOUNTS:-10000}"
  PG_SECS="${BENCH_PG_SECS:-60}"
  CEILING_SECS=3
fi
COMMAND="scripts/bench.sh${1:+ $1}"
OUT=target/bench
mkdir -p "$OUT"
rm -f "$OUT"/alliance-*.json "$OUT"/postgres.json "$OUT"/ceiling.json "$OUT"/machine.json

echo "bench: building (release)" >&2
cargo build --release -q -p alliance-node --bin alliance-node
cargo build --release -q -p alliance-tests --bin alliance-bench
BENCH=target/release/alliance-bench

load() { cut -d' ' -f1-3 /proc/loadavg; }
machine_json() {
  local cpu cores mem kernel
  cpu="$(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
  cores="$(nproc)"
  mem="$(awk '/MemTotal/ {printf "%d", $2 / 1048576 + 0.5}' /proc/meminfo)"
  kernel="$(uname -r)"
  cat <<EOF
{"cpu": "${cpu:-unknown}", "cores": $cores, "mem_gib": $mem, "kernel": "$kernel",
 "date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "rustc": "$(rustc --version | cut -d' ' -f2)", "load_before": "$1", "load_after": "$2"}
EOF
}
LOAD_BEFORE="$(load)"
echo "bench: load average $LOAD_BEFORE" >&2

echo "bench: ceiling (ed25519, sled)" >&2
"$BENCH" ceiling --seconds "$CEILING_SECS" --out "$OUT/ceiling.json" >/dev/null

for n in $VALIDATORS; do
  echo "bench: $n validators" >&2
  "$BENCH" alliance --validators "$n" --rates "$RATES" --step-secs "$STEP_SECS" \
    --headline-secs "$HEADLINE_SECS" --accounts "$ACCOUNTS" \
    --out "$OUT/alliance-$n.json" >/dev/null
done

echo "bench: PostgreSQL" >&2
if ! scripts/bench-postgres.sh "$PG_SECS" 16 "$ACCOUNTS" >"$OUT/postgres.json"; then
  echo "bench: PostgreSQL comparison failed (see above); reporting without it" >&2
  rm -f "$OUT/postgres.json"
fi

machine_json "$LOAD_BEFORE" "$(load)" >"$OUT/machine.json"
if [ -n "${BENCH_NO_DOCS:-}" ]; then
  cp docs/benchmarks.md "$OUT/benchmarks.md" 2>/dev/null || : >"$OUT/benchmarks.md"
  "$BENCH" report --dir "$OUT" --docs "$OUT/benchmarks.md" --command "$COMMAND"
else
  "$BENCH" report --dir "$OUT" --docs docs/benchmarks.md --command "$COMMAND"
  echo "bench: docs/benchmarks.md updated; JSON in $OUT/" >&2
fi
