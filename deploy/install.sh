#!/bin/sh
# Installs a built ferry-worker as a systemd service on this node:
#   /usr/bin/ferry-worker, /etc/ferry/connect-distributed.properties (kept if it exists),
#   /etc/systemd/system/ferry.service, and a `ferry` system user.
# usage: deploy/install.sh [BUILD_DIR] [--root DIR] [--no-start]
#   --root DIR   install under DIR instead of / (no user, no systemctl): for packaging and tests
#   --no-start   install and enable, but do not start the service yet (edit the config first)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../build"
root=""
start=1
while [ $# -gt 0 ]; do
    case "$1" in
    --root) root="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
    esac
done
if [ ! -x "$build/ferry-worker" ]; then
    echo "install.sh: $build/ferry-worker not found: build first (cmake -S . -B build && cmake --build build)" >&2
    exit 2
fi
install -D -m 0755 "$build/ferry-worker" "$root/usr/bin/ferry-worker"
install -D -m 0644 "$here/ferry.service" "$root/etc/systemd/system/ferry.service"
if [ -e "$root/etc/ferry/connect-distributed.properties" ]; then
    echo "install.sh: keeping the existing $root/etc/ferry/connect-distributed.properties"
else
    install -D -m 0640 "$here/connect-distributed.properties" "$root/etc/ferry/connect-distributed.properties"
fi
if [ -z "$root" ]; then
    id ferry >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ferry
    chgrp ferry /etc/ferry/connect-distributed.properties
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable ferry
        [ "$start" = 1 ] && systemctl restart ferry
    else
        echo "install.sh: systemd is not running here: start with /usr/bin/ferry-worker /etc/ferry/connect-distributed.properties"
    fi
fi
echo "install.sh: installed ferry-worker $("$build/ferry-worker" --version 2>/dev/null | head -n 1) under ${root:-/}"
