#!/bin/sh
# Install reelcast with its test extras, lint, type-check, and run the whole test suite.
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-ffmpeg.sh
sh scripts/ensure-chromium.sh
sh scripts/ensure-postgresql.sh
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
exec python3 -m pytest "$@"
