#!/usr/bin/env bash
# Builds the one-folder bundle dist/GhostFace/ (Linux, macOS) with PyInstaller, from a fresh clone too.
#
#   bash packaging/build.sh            # or: make package
#   bash packaging/build.sh --archive  # also pack dist/GhostFace-<version>-<os>-<arch>.tar.gz to publish
#
# Environment:
#   PYTHON            interpreter that creates .venv when it is missing (default python3)
#   VENV              the virtual environment to build from (default .venv)
#   GHOSTFACE_SHARED  the shared data folder (default ../shared); its models/ folder supplies the
#                     RetinaFace weights unless GHOSTFACE_MODEL_PATH already names a folder
#   GHOSTFACE_ALLOW_MISSING_MODELS=1  build even when the RetinaFace weights are not found
#   BUILD_NICE        niceness of the PyInstaller run (default 10: the build shares the machine)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)
SHARED=${GHOSTFACE_SHARED:-$REPO/../shared}

say() { printf '[build] %s\n' "$*"; }

archive=0
for arg in "$@"; do
    case $arg in
        --archive) archive=1 ;;
        *) say "unknown option: $arg (known: --archive)"; exit 2 ;;
    esac
done

# Qt's xcb platform plugin needs these system libraries. PyInstaller copies the build machine's copies
# into the bundle, so they must be installed here, or the bundle cannot open a window elsewhere.
QT_DEBS=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
    libxcb-shape0 libxcb-xfixes0 libxkbcommon-x11-0 libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3)
if [[ $(uname -s) == Linux ]] && command -v dpkg >/dev/null; then
    missing=()
    for deb in "${QT_DEBS[@]}"; do
        dpkg -s "$deb" >/dev/null 2>&1 || missing+=("$deb")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            say "installing Qt system libraries: ${missing[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
        else
            say "WARNING: missing Qt system libraries (the bundle may not open a window elsewhere): ${missing[*]}"
            say "         install them with: sudo apt-get install ${missing[*]}"
        fi
    fi
fi

# The environment: the same pins as `make install`, plus PyInstaller from the `package` extra.
if [[ ! -x $PY ]]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$PY" -c "import torch, cv2, PySide6" >/dev/null 2>&1; then
    torch_pin=$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
    say "installing $torch_pin (CPU) and the app"
    # torch first, alone, so that pip never resolves the multi-GB CUDA build.
    "${PIP[@]}" install "$torch_pin"
fi
pyinstaller_pin=$(grep -o '"pyinstaller==[^"]*"' pyproject.toml | tr -d '"' | cut -d= -f3)
if ! "$PY" - "$pyinstaller_pin" >/dev/null 2>&1 <<'PYCHECK'
import sys
from importlib.metadata import version
assert version("pyinstaller") == sys.argv[1] and version("ghostface-desktop")
PYCHECK
then
    say "installing the app with its 'package' extra (PyInstaller)"
    "${PIP[@]}" install -e '.[package]'
fi
"$PY" -c "import torch; assert not torch.version.cuda, 'a CUDA build of torch is installed: the bundle would be GBs'"

# Model files that do not come from a Python package are taken from GHOSTFACE_MODEL_PATH.
if [[ -z ${GHOSTFACE_MODEL_PATH:-} && -d $SHARED/models ]]; then
    export GHOSTFACE_MODEL_PATH="$SHARED/models"
fi
# A private home: the build never reads or writes the builder's own GhostFace settings or models.
export GHOSTFACE_HOME="$REPO/build/home"

if [[ ! -f core/weights/ghostfacenetv2.pt ]]; then
    say "NOTE: core/weights/ghostfacenetv2.pt is missing; the bundle will only offer the SFace embedder"
fi

say "running PyInstaller (one folder)"
start=$(date +%s)
nice -n "${BUILD_NICE:-10}" "$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/ghostface.spec
elapsed=$(($(date +%s) - start))

exe=dist/GhostFace/GhostFace
[[ -x $exe ]] || { say "ERROR: $exe was not produced"; exit 1; }
size=$(du -sh dist/GhostFace | cut -f1)
say "built $exe in ${elapsed} s; bundle size $size"

if ((archive)); then
    version=$("$PY" -c "from importlib.metadata import version; print(version('ghostface-desktop'))")
    os_name=$(uname -s | tr '[:upper:]' '[:lower:]')
    name="GhostFace-$version-$os_name-$(uname -m).tar.gz"
    say "packing dist/$name"
    tar -C dist -czf "dist/$name" GhostFace
    say "archive dist/$name ($(du -sh "dist/$name" | cut -f1))"
fi
