#!/bin/sh
# The tests run reelcast's state on PostgreSQL too: they start a throw-away cluster of
# their own (initdb in a temporary folder, a free port on 127.0.0.1), so only the server's
# binaries are needed, no running service. Install them from the system's packages when
# missing (Debian/Ubuntu: apt-get; macOS: brew).
set -e
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
echo "reelcast: installing PostgreSQL (the tests run reelcast's state on it too)"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    # Debian's package starts a system cluster; the tests do not use it.
    $SUDO service postgresql stop >/dev/null 2>&1 || true
elif command -v brew >/dev/null 2>&1; then
    brew install postgresql
else
    echo "reelcast: please install the PostgreSQL server (initdb, pg_ctl)" >&2
    exit 1
fi
