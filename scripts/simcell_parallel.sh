#!/usr/bin/env bash
# The simulated cell on a many-core machine: one `binpick simcell run` per (seed, family, method),
# JOBS at a time, each single-threaded in its own folder; then the records of a seed are merged
# into OUT/seed<S>/records_<method>.jsonl for `binpick simcell report --out OUT/seed<S>`.
# The piles depend only on (seed, family, sequence), so the split changes no record.
#
#   SEEDS="2 3" METHODS="ours planar" JOBS=16 OUT=out/simcell_par scripts/simcell_parallel.sh [run options]
#
# Extra arguments go to every `simcell run` (e.g. --bin --model models/bicameral_f25_rgbd.onnx).
# On a lent GPU machine (docs/gpu.md): carry .whl and .gl, and set PYTHONPATH as scripts/lent_gpu_run.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BINPICK_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=$(command -v python3); fi
fi
SEEDS=${SEEDS:-"0"}
METHODS=${METHODS:-"ours planar"}
FAMILIES=${FAMILIES:-"stick_sachet pillow_sachet square_sachet round_cookie rigid_box folded_pouch"}
SEQUENCES=${SEQUENCES:-3}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-out/simcell_parallel}
mkdir -p "$OUT"
jobs_file="$OUT/jobs.txt"
: >"$jobs_file"
for seed in $SEEDS; do
    for method in $METHODS; do
        for family in $FAMILIES; do
            echo "$seed $method $family" >>"$jobs_file"
        done
    done
done
EXTRA="$*"  # options without spaces in them (paths included)
export PY OUT SEQUENCES EXTRA
run_one() {
    local seed=$1 method=$2 family=$3
    local dir="$OUT/parts/seed$seed/$method/$family"
    mkdir -p "$dir"
    # shellcheck disable=SC2086  # EXTRA: several options
    "$PY" -m edge simcell run --family "$family" --sequences "$SEQUENCES" --seed "$seed" \
        --method "$method" --threads 1 --out "$dir" $EXTRA >"$dir/log.txt" 2>&1 \
        || { echo "simcell_parallel: seed $seed $method $family failed ($dir/log.txt):" >&2
             tail -n 5 "$dir/log.txt" >&2; }
}
export -f run_one
xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"
for seed in $SEEDS; do
    mkdir -p "$OUT/seed$seed"
    for part in "$OUT"/parts/seed"$seed"/*/*/records_*.jsonl; do
        [ -f "$part" ] || continue
        cat "$part" >>"$OUT/seed$seed/$(basename "$part")"
    done
done
echo "simcell_parallel: records in $OUT/seed*/ (binpick simcell report --out $OUT/seed<S>)"
