#!/usr/bin/env bash
# Build the native module edge._hotpath with CMake into build/inplace and copy
# it next to edge/, so the source tree imports it without `pip install`
# (PYTHONPATH=$PWD python -c "import edge._hotpath"). Incremental; safe to rerun.
# The Python used (for headers and pybind11) is $BINPICK_PYTHON, else .venv's, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BINPICK_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=$(command -v python3); fi
fi
GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
if [ ! -f build/inplace/CMakeCache.txt ]; then
    PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir) || {
        echo "build_native_inplace: $PY has no pybind11 (set BINPICK_PYTHON to a Python that has it)" >&2
        exit 1
    }
    cmake -S . -B build/inplace "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
        -Dpybind11_DIR="$PYBIND11_DIR" -DPython_EXECUTABLE="$("$PY" -c 'import sys; print(sys.executable)')"
fi
cmake --build build/inplace --parallel "${BINPICK_BUILD_JOBS:-2}"
module=$(find build/inplace -maxdepth 1 \( -name '_hotpath*.so' -o -name '_hotpath*.pyd' \) | head -n 1)
[ -n "$module" ] || { echo "build_native_inplace: no _hotpath module built" >&2; exit 1; }
cp -f "$module" edge/
echo "build_native_inplace: $(basename "$module") -> edge/"
