#!/usr/bin/env bash
# Round-trip latency through the TAP against a plain veth pair (see bench/latency.py): builds
# the release binary and measures. Needs root. Arguments go to latency.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -q -p bond-dp --bin bond-dp
exec python3 bench/latency.py "$@"
