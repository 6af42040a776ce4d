#!/usr/bin/env bash
# Audit speed (docs/benchmarks.md, "Audit speed"): builds (once, then reuses)
# an export of >= 1,000,000 transfers and measures, in one run, the raw
# ed25519 rates (verify_strict and batch, one core and every core) and the
# auditor's transactions per second, with the ratio.
#
# Environment: AUDIT_BENCH_TRANSFERS (default 1000000), AUDIT_BENCH_BLOCK_TXS
# (default 2000), AUDIT_BENCH_EXPORT (default $TMPDIR/audit-bench-N x B.paexport).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "load before: $(uptime)"
cargo bench -p alliance-protocol --bench audit
echo "load after: $(uptime)"
