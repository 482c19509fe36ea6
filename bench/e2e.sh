#!/usr/bin/env bash
# The end-to-end veth benchmark (see bench/e2e.py): installs DPDK and friends if missing,
# builds the release binaries, and runs the contenders in alternating rounds. Needs root.
# Arguments go to e2e.py: --rounds N, --seconds S, --only forward|txonly|receive, --no-dpdk.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --bench
cargo build --release -q -p bond-dp -p bond-dp-bench --bin bond-dp --bin e2e
exec python3 bench/e2e.py "$@"
