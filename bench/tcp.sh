#!/usr/bin/env bash
# TCP through the TAP against a plain veth pair (see bench/tcp.py): builds
# the release binary and measures. Needs root. Arguments go to tcp.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -q -p bond-dp --bin bond-dp
exec python3 bench/tcp.py "$@"
