#!/usr/bin/env bash
# Screenshots of the running application for the README, taken from a real X server (Xvfb).
# Needs: xvfb-run and ImageMagick's `import` (Debian: xvfb xauth imagemagick, plus the Qt xcb
# libraries listed in the README), the project's .venv, and the shared demo data next to the repo.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
unset QT_QPA_PLATFORM
exec xvfb-run -a -s "-screen 0 1280x800x24" "$PY" docs/screenshots/shoot.py
