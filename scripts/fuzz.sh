#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan, and runs
# each one for SECONDS (default 20) on a temporary copy of its seed corpus
# (tests/fuzz/corpus/<name>, which also holds the inputs of past findings, so every run
# replays them first). Exit code: non-zero if any harness found a crash, leak, hang or broken
# invariant; the input that triggered it is kept and its path printed.
#
#   bash scripts/fuzz.sh            # the short run of scripts/test.sh
#   bash scripts/fuzz.sh 300        # the long run of docs/RELIABILITY.md ("Fuzzing")
#   bash scripts/fuzz.sh 300 config # one harness only (fuzz_config)
#   FERRY_FUZZ_BUILD=/tmp/bf bash scripts/fuzz.sh   # another build directory (default build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
only=${2:-}
build=${FERRY_FUZZ_BUILD:-build-fuzz}
echo "== build (clang, libFuzzer + ASan+UBSan) in $build"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON \
    -DFERRY_INTEGRATION=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz
work=$(mktemp -d /tmp/ferry-fuzz.XXXXXX)
failed=""
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    short=${name#fuzz_}
    [ -z "$only" ] || [ "$only" = "$short" ] || continue
    mkdir -p "$work/$short/corpus" "$work/$short/artifacts"
    cp tests/fuzz/corpus/"$short"/* "$work/$short/corpus/"
    echo "== $name: ${secs} s on $(ls "$work/$short/corpus" | wc -l) seed inputs"
    if "$build/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/$short/artifacts/" "$work/$short/corpus" \
        >"$work/$short/log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$short/log")
        echo "   ok: $execs runs, no crash; $(grep -o 'cov: .*' "$work/$short/log" | tail -1)"
    else
        echo "   FAILED: $name found a bug; input(s) kept in $work/$short/artifacts/:" >&2
        ls "$work/$short/artifacts" >&2
        grep -E "ERROR|SUMMARY|runtime error|fuzz_" "$work/$short/log" | head -20 >&2
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (logs and inputs in $work)" >&2
    exit 1
fi
rm -rf "$work"
