#!/bin/sh
# ffmpeg encodes the videos (PyAV checks them in-process; some tests call ffprobe). Install
# it from the system's packages when missing (Debian/Ubuntu: apt-get; macOS: brew).
set -e
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    exit 0
fi
echo "reelcast: installing ffmpeg (ffmpeg and ffprobe are needed to encode and check videos)"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
elif command -v brew >/dev/null 2>&1; then
    brew install ffmpeg
else
    echo "reelcast: please install ffmpeg (with ffprobe) with your package manager" >&2
    exit 1
fi
