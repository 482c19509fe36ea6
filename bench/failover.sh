#!/usr/bin/env bash
# The failover benchmark (see bench/failover.py): installs tcpreplay if missing, builds the
# release binaries, and measures frames lost on carrier loss. Needs root.
# Arguments go to failover.py: --rounds N, --seconds S.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --bench
cargo build --release -q -p bond-dp -p bond-dp-bench --bin bond-dp --bin e2e
exec python3 bench/failover.py "$@"
