#!/usr/bin/env bash
# The whole test suite, as the README's quickstart runs it. Long soaks and
# benchmarks are not here: see scripts/ and docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
