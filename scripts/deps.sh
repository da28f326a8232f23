#!/usr/bin/env bash
# Installs the Debian packages ferry needs, only those that are missing.
# Used by the README's two commands, so a fresh Debian machine needs nothing else.
set -euo pipefail
PKGS="build-essential cmake pkg-config librdkafka-dev libzookeeper-mt-dev zookeeper default-jre-headless
      libh2o-evloop-dev libmsgpack-dev libcunit1-dev libjansson-dev libjemalloc-dev libcurl4-openssl-dev
      libssl-dev libisal-dev libsystemd-dev openssl kcat python3 curl iproute2 procps dpkg-dev clang libclang-rt-dev chromium
      fonts-dejavu-core nodejs"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "ferry: installing missing packages:$missing" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
