#!/bin/sh
# Headless Chromium shows the Prefect UI to the end-to-end test
# (tests/flows/test_e2e_prefect_ui.py). Install Debian's `chromium` when it is missing.
# Elsewhere, say how to get it and go on: only that one test needs a browser.
set -e
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
    echo "reelcast: installing chromium (the end-to-end test looks at the Prefect UI with it)"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
else
    echo "reelcast: no chromium on PATH; install it to run the end-to-end UI test" >&2
fi
