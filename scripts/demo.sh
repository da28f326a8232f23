#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds ferry, and runs the
# seed migration of 100,000 records on an embedded local cluster (deploy/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
FERRY_BUILD="$PWD/build" exec python3 deploy/demo.py "$@"
