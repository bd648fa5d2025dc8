#!/usr/bin/env bash
# The one GPU check: run from the repository root on a machine with a CUDA GPU, nvcc,
# cmake, pybind11 and torch (CUDA). Unattended, no network, well under 4 minutes:
#   1. builds the CPU hot path in place if it does not import (scripts/build_native_inplace.sh);
#   2. builds edge._hotpath_cuda in place (src_cpp/cuda, standalone CMake, sm_90 unless
#      CUDAARCHS says otherwise);
#   3. runs tests/test_postprocess_cuda.py (GPU result == CPU result on many maps) and
#      tests/test_appliance_torch_cuda.py (the appliance's torch-cuda backend, GPU ranking),
#      once per mode of the CUDA ranking (direct, graph);
#   4. runs benchmarks/gpu.py (end-to-end latency, F100 and F25 at 512x512; its arguments from
#      GPU_BENCHMARK_ARGS), unless GPU_CHECK_BENCHMARK=0 (scripts/lent_gpu_run.sh times it later,
#      on a quiet machine).
# Everything it writes goes to $OUT (default out/gpu_check): environment.txt, build logs,
# pytest_MODE.log + junit_MODE.xml, benchmark.log + gpu.json, and summary.txt (one line per step).
#
#   PYTHONPATH=. OUT=/tmp/out scripts/gpu_check.sh
# Exit status: 0 when every step passed, else the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
PY=${BINPICK_PYTHON:-$(command -v python3)}
export PYTHONPATH=${PYTHONPATH:-.}
export CUDAARCHS=${CUDAARCHS:-90}
export BINPICK_BUILD_JOBS=${BINPICK_BUILD_JOBS:-$(nproc)}
export BINPICK_PYTHON=$PY PY
export BINPICK_REQUIRE_GPU=1  # the GPU test fails, rather than skips, without a usable GPU
failures=0
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
STARTED="$OUT/.started"
touch "$STARTED"

step() {  # step NAME TIMEOUT_S LOG COMMAND...: run, time and record one step
    local name=$1 limit=$2 log=$3
    shift 3
    local start=$SECONDS
    timeout "$limit" "$@" >"$log" 2>&1
    local rc=$?
    local status="ok"
    if [ "$rc" -ne 0 ]; then
        status="FAILED (exit $rc, log $(basename "$log"))"
        failures=$((failures + 1))
    fi
    echo "gpu_check: $name: $status in $((SECONDS - start)) s" | tee -a "$SUMMARY"
    return "$rc"
}

{
    date -u
    nvidia-smi || true
    nvcc --version || true
    cmake --version | head -n 1
    "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "torch", "pybind11", "pytest", "cv2", "scipy"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:
        print(name, "MISSING:", exc)
import torch
print("torch.cuda", torch.version.cuda, torch.cuda.is_available(), torch.cuda.is_available() and torch.cuda.get_device_name(0))
EOF
} >"$OUT/environment.txt" 2>&1

if "$PY" -c "import edge._hotpath" >/dev/null 2>&1; then
    echo "gpu_check: CPU hot path: already importable" | tee -a "$SUMMARY"
else
    step "build CPU hot path (scripts/build_native_inplace.sh)" 240 "$OUT/build_cpu.log" \
        scripts/build_native_inplace.sh
fi

build_cuda() {
    # The top-level build of step 1 (when it ran) already compiled the module for $CUDAARCHS.
    local built
    built=$(find build/inplace/src_cpp/cuda -maxdepth 1 -name '_hotpath_cuda*.so' -newer "$STARTED" 2>/dev/null | head -n 1)
    if [ -n "$built" ]; then
        cp -f "$built" edge/ && echo "copied $built from the top-level build" &&
            "$PY" -c "import edge._hotpath_cuda as m; print('edge._hotpath_cuda', m.__file__, m.cuda_status())"
        return
    fi
    local generator=()
    command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
    cmake -S src_cpp/cuda -B build/cuda "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES="$CUDAARCHS" \
        -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
        -DPython_EXECUTABLE="$("$PY" -c 'import sys; print(sys.executable)')" &&
        cmake --build build/cuda --parallel "$(nproc)" &&
        "$PY" -c "import edge._hotpath_cuda as m; print('edge._hotpath_cuda', m.__file__, m.cuda_status())"
}
step "build edge._hotpath_cuda (sm_$CUDAARCHS)" 240 "$OUT/build_cuda.log" \
    env STARTED="$STARTED" bash -c "$(declare -f build_cuda); build_cuda"

# Both modes of the CUDA ranking (edge.ranking.cuda: direct, and one captured graph per input).
for mode in direct graph; do
    graph=0
    [ "$mode" = graph ] && graph=1
    step "tests/test_postprocess_cuda.py tests/test_appliance_torch_cuda.py ($mode ranking)" 300 \
        "$OUT/pytest_$mode.log" env BINPICK_CUDA_GRAPH_RANKING=$graph \
        "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_postprocess_cuda.py \
        tests/test_appliance_torch_cuda.py --junitxml="$OUT/junit_$mode.xml"
    tail -n 3 "$OUT/pytest_$mode.log" | tee -a "$SUMMARY"
done

if [ "${GPU_CHECK_BENCHMARK:-1}" = 1 ]; then
    step "benchmarks/gpu.py" 240 "$OUT/benchmark.log" \
        "$PY" -m benchmarks.gpu ${GPU_BENCHMARK_ARGS:---repeats 200 --cpu-repeats 20} --json "$OUT/gpu.json"
    sed -n '/^GPU post-processing alone/,$p' "$OUT/benchmark.log" | tee -a "$SUMMARY"
fi

echo "gpu_check: $failures step(s) failed; logs in $OUT" | tee -a "$SUMMARY"
exit "$failures"
