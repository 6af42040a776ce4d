#!/usr/bin/env bash
# The explorer's browser test alone: devnet + headless chromium (installed
# with apt-get if missing). Prints the screenshot's path.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p alliance-node
cargo test -p alliance-tests --test explorer -- --nocapture "$@"
ls -l target/test-artifacts/explorer.png 2>/dev/null || true
