#!/bin/sh
# Installs a built ferry-worker as a systemd service on this node:
#   /usr/bin/ferry-worker, /etc/ferry/connect-distributed.properties (kept if it exists),
#   /etc/systemd/system/ferry.service, and a `ferry` system user.
# usage: deploy/install.sh [BUILD_DIR] [--root DIR] [--no-start]
#   --root DIR   install under DIR instead of / (an image: no user; the unit is enabled offline
#                with systemctl --root, nothing is started): for images and tests
#   --no-start   install only: neither enable nor start the service (edit the config, check it
#                with ferry-worker --check --as ferry, then systemctl enable --now ferry)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../build"
root=""
start=1
while [ $# -gt 0 ]; do
    case "$1" in
    --root) root="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
if [ -n "$root" ]; then
    if [ "$start" = 1 ] && command -v systemctl >/dev/null 2>&1; then
        systemctl --root="$root" enable ferry.service
    fi
else
    id ferry >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ferry
    chgrp ferry /etc/ferry/connect-distributed.properties
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        if [ "$start" = 1 ]; then
            systemctl enable ferry
            systemctl restart ferry
        else
            echo "install.sh: not enabled or started; when the config is ready: systemctl enable --now ferry"
        fi
    else
        echo "install.sh: systemd is not running here: start with /usr/bin/ferry-worker /etc/ferry/connect-distributed.properties"
    fi
fi
echo "install.sh: installed ferry-worker $("$build/ferry-worker" --version 2>/dev/null | head -n 1) under ${root:-/}"
