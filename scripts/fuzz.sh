#!/usr/bin/env bash
# Fuzzes bond-dp's parsers of untrusted bytes with cargo-fuzz (libFuzzer):
#   scripts/fuzz.sh [--seconds N | --runs N] [TARGET...]
# Without targets, every one (fuzz/Cargo.toml); by default 10 s each, what CI runs. The corpus
# grows in fuzz/corpus (not committed), seeded by fuzz/seeds.py from the frames recorded on
# the testbeds (fuzz/captures) and the samples. A crash fails the run and leaves its input in
# fuzz/artifacts/TARGET. Installs cargo-fuzz if missing; uses a nightly toolchain if there is
# one, else RUSTC_BOOTSTRAP=1 with the stable one.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=10)
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    -*) echo "fuzz: unknown flag $1 (--seconds N, --runs N)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v bond-dp-fuzz)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
python3 fuzz/seeds.py
"${fuzz[@]}" build -O --fuzz-dir fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    if ! "${fuzz[@]}" run -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- "${limit[@]}" \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t failed; the input is in fuzz/artifacts/$t" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: ${runs:-?} executions, no crash (${limit[*]})"
done
