#!/bin/sh
# Install reelcast and run the demo campaign: `scripts/demo.sh [--limit N] [--workspace DIR]`.
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-ffmpeg.sh
python3 -m pip install --quiet --disable-pip-version-check -e .
exec reelcast demo "$@"
