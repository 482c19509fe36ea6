#!/usr/bin/env bash
# Everything CI checks, from a fresh clone: installs missing build and test dependencies,
# checks formatting and lints, builds the benchmarks, runs the unit, command-line and
# veth-testbed tests (the testbed tests need root), and fuzzes each parser for 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."

# --bench: DPDK too, the second 802.3ad implementation tests/lacp_dpdk.rs negotiates with.
scripts/deps.sh --bench
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo bench --workspace --no-run -q
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# Every parser of untrusted bytes under libFuzzer, briefly (scripts/fuzz.sh for long runs).
scripts/fuzz.sh --seconds 10
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test binary with nothing in it).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
leftover=$(ip netns list 2>/dev/null | grep -c '^bdp' || true)
if [[ $leftover -ne 0 ]]; then
    echo "test: $leftover bond-dp test namespace(s) left behind:" >&2
    ip netns list | grep '^bdp' >&2
    exit 1
fi
