#!/usr/bin/env bash
# Member changes under traffic (see bench/member_change.py): builds the release binary and
# measures how long traffic through the staying members stops while a member joins or
# leaves. Needs root. Arguments go to member_change.py: --rounds N, --baseline BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -q -p bond-dp --bin bond-dp
exec python3 bench/member_change.py "$@"
