#!/usr/bin/env bash
# Kill-to-traffic benchmark (see bench/restart.py): builds the release binary and measures
# how long the host is cut off when bond-dp is killed with SIGKILL and started again at once.
# Needs root. Arguments go to restart.py: --rounds N.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -q -p bond-dp --bin bond-dp
exec python3 bench/restart.py "$@"
