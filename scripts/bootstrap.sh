#!/usr/bin/env bash
# Idempotent set-up of a development/CI machine (Debian, Python 3.11):
# system packages (only those missing), a venv in .venv, and the project
# installed editable with the native module built. Safe to run every time:
# it skips what is already done and rebuilds the native module incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${BINPICK_VENV:-$ROOT/.venv}
PY=${BINPICK_PYTHON:-$(command -v python3.11 || command -v python3)}

# Debian packages: a C++ compiler for the native module, OSMesa for offscreen
# MuJoCo rendering on a CPU, and the real peers the tests talk to (Chromium and
# its driver: the operator page's browser tests).
APT_PACKAGES=(g++ libosmesa6 mbpoll socat ffmpeg systemd chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then
    missing+=("python3-venv")
fi
if ((${#missing[@]})); then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi

# Full dependency install only when pyproject.toml changed since the last one.
STAMP="$VENV/.binpick-deps-stamp"
DEPS_HASH=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$DEPS_HASH" ]; then
    echo "bootstrap: installing Python dependencies (first run takes a few minutes)"
    # Build requirements first: ours (scikit-build-core, pybind11, cmake, ninja) and those of the
    # one dependency published only as an sdist (pyedgeeval: numpy, Cython, setuptools, wheel).
    # --no-build-isolation below builds every sdist in this venv, so they must be here; a warm
    # pip wheel cache hides their absence (issue 15), scripts/check_fresh_install.sh proves it.
    "$VENV/bin/python" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja \
        numpy Cython setuptools wheel
    "$VENV/bin/python" -m pip install -q --no-build-isolation -e ".[train,sim,test,x86]"
    echo "$DEPS_HASH" >"$STAMP"
else
    # Incremental rebuild of the native module (build/ is kept between runs).
    "$VENV/bin/python" -m pip install -q --no-build-isolation --no-deps -e .
fi
