#!/usr/bin/env bash
# The README's test command: installs what is missing, builds ferry twice (release, and
# ASan+UBSan), then runs every test: all of them against the sanitizer build, and the unit
# tests against the release build too; in between, a short fuzz run (scripts/fuzz.sh: a
# third build with clang, each libFuzzer harness 20 s). Exit code: non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
echo "== build (release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
echo "== unit tests (release)"
(cd build && ctest --output-on-failure -L unit "$@")
echo "== fuzz (20 s per harness)"
bash scripts/fuzz.sh 20
echo "== all tests (ASan+UBSan)"
(cd build-asan && ctest --output-on-failure "$@")
