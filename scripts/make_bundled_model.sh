#!/usr/bin/env bash
# Make the bundled default model, end to end, on one machine:
#   Mikado+ training set and a held-out test set (other seeds, other texture seeds)
#   -> binpick train (time budget) -> binpick export (ONNX into models/)
#   -> binpick eval on the test set -> binpick model-card (models/README.md).
#
# Runs from a source checkout with PYTHONPATH=. (no pip install of the project needed). Built for a
# lent GPU machine (16 cores, one H100/H200, no internet, MUJOCO_GL=egl) and for a tiny run on a
# CPU. Everything is sized by environment variables (defaults in brackets):
#
#   TOTAL_BUDGET   seconds for the whole script; training gets what data, export and eval leave [540]
#   TIME_BUDGET    training seconds; overrides the share derived from TOTAL_BUDGET
#   RESERVE        seconds of TOTAL_BUDGET kept for export, evaluation and the card [15 %, at least 60]
#   DATA_BUDGET    seconds allowed for generating the training set; the scenes finished by then
#                  are used [TOTAL_BUDGET/4]
#   TRAIN_COUNT    training scenes [3000]        TEST_COUNT   held-out test scenes, 0: none [100]
#   IMAGE_WIDTH, IMAGE_HEIGHT  rendered frame size [640, 512]   PRESET  Mikado preset [mikado+]
#   TRAIN_SEED     [1000]   TEST_SEED [7000000]  (seeds of disjoint scenes; textures derive from them)
#   WIDTH          F25 | F50 | F75 | F100 | fraction [F25]   INPUT  rgb | depth | rgbd [rgb]
#   DEPTH_NOISE    1: depth inputs trained and evaluated on stereo-noise depth (--depth-noise) [0]
#   CROP [256]  BATCH [8]  LR [1e-4]  VAL_EVERY (iterations) [1000]  VAL_COUNT (held-out scenes) [5 %, at most 48]
#   CROPS_PER_SCENE  crops cut from each decoded scene; raise it (2, 4) when log.csv shows data
#                  loading limiting iterations/s [1]
#   WORKERS (data generation) [nproc]  LOADER_WORKERS (training DataLoader) [nproc-1, at most 14]
#   ENCODER_WEIGHTS  torchvision VGG16 state dict for the encoder (F100 only) [none: from scratch]
#   INIT_FROM      start from this checkpoint instead (binpick finetune; WIDTH is then the
#                  checkpoint's; an RGB checkpoint with INPUT=rgbd is widened, depth kernels at 0)
#   FREEZE_BLOCKS  with INIT_FROM: VGG16 blocks kept frozen [0]
#   EXPORT         dynamic | HEIGHTxWIDTH (static export, e.g. 512x640) [dynamic]
#   MODEL          output model [models/bicameral_<width>_<input>.onnx]   MODEL_ID [1]
#   CARD           the model card [the model's folder's README.md: the bundled model's card]
#   DATA_DIR [data/bundled]  RUN_DIR [runs/bundled]  STAGES "data train export eval card" [all]
#   OUT            if set, logs, eval JSON, PR plot, training CSV and the card are copied there
#   PYTHON         interpreter [python3]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
START=$(date +%s)

TOTAL_BUDGET=${TOTAL_BUDGET:-540}
DATA_BUDGET=${DATA_BUDGET:-$((TOTAL_BUDGET / 4))}
TRAIN_COUNT=${TRAIN_COUNT:-3000}
TEST_COUNT=${TEST_COUNT:-100}
IMAGE_WIDTH=${IMAGE_WIDTH:-640}
IMAGE_HEIGHT=${IMAGE_HEIGHT:-512}
PRESET=${PRESET:-mikado+}
TRAIN_SEED=${TRAIN_SEED:-1000}
TEST_SEED=${TEST_SEED:-7000000}
WIDTH=${WIDTH:-F25}
INPUT=${INPUT:-rgb}
DEPTH_NOISE=${DEPTH_NOISE:-0}  # 1: train and evaluate depth inputs on stereo-noise depth (mikado.depth_noise)
noise=(); [[ "$DEPTH_NOISE" == 1 ]] && noise=(--depth-noise)
CROP=${CROP:-256}
BATCH=${BATCH:-8}
LR=${LR:-1e-4}
WORKERS=${WORKERS:-$(nproc)}
# DataLoader processes: all cores but the training process's own, at most 14.
LOADER_WORKERS=${LOADER_WORKERS:-$(( WORKERS > 15 ? 14 : (WORKERS > 1 ? WORKERS - 1 : 1) ))}
EXPORT=${EXPORT:-dynamic}
WIDTH_TAG=$(echo "$WIDTH" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9\n' '_')
MODEL=${MODEL:-models/bicameral_${WIDTH_TAG}_${INPUT}.onnx}
MODEL_ID=${MODEL_ID:-1}
DATA_DIR=${DATA_DIR:-data/bundled}
RUN_DIR=${RUN_DIR:-runs/bundled}
STAGES=${STAGES:-data train export eval card}
LOG_DIR=${OUT:-$RUN_DIR}/logs
mkdir -p "$LOG_DIR" "$RUN_DIR" "$(dirname "$MODEL")"

binpick() { "$PYTHON" -m edge "$@"; }
log() { echo "[make_bundled_model $(date -u +%H:%M:%S) +$(($(date +%s) - START))s] $*" | tee -a "$LOG_DIR/make_bundled_model.log"; }
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
elapsed() { echo $(($(date +%s) - START)); }

# Rendering backend: EGL where an NVIDIA GPU is present, OSMesa (libosmesa6) otherwise.
if [[ -z "${MUJOCO_GL:-}" ]]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then export MUJOCO_GL=egl; else export MUJOCO_GL=osmesa; fi
fi
log "python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'), MUJOCO_GL=$MUJOCO_GL, $(nproc) cores"
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG_DIR/make_bundled_model.log"
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"torch {torch.__version__}, CUDA GPU: {gpu}")
EOF

if has_stage data; then
    log "training set: $TRAIN_COUNT $PRESET scenes ${IMAGE_WIDTH}x${IMAGE_HEIGHT}, seed $TRAIN_SEED, $WORKERS workers, at most ${DATA_BUDGET}s"
    set +e
    timeout --signal=INT --kill-after=30 "$DATA_BUDGET" "$PYTHON" -m edge mikado generate --preset "$PRESET" \
        --count "$TRAIN_COUNT" --seed "$TRAIN_SEED" --width "$IMAGE_WIDTH" --height "$IMAGE_HEIGHT" \
        --workers "$WORKERS" --out "$DATA_DIR/train" 2>&1 | tee "$LOG_DIR/generate_train.log"
    status=${PIPESTATUS[0]}
    set -e
    if [[ $status -eq 124 || $status -eq 130 || $status -eq 137 ]]; then
        log "data budget reached: training on the scenes finished so far"
    elif [[ $status -ne 0 ]]; then
        log "generating the training set failed (exit $status); see $LOG_DIR/generate_train.log"; exit "$status"
    fi
    if ((TEST_COUNT > 0)); then
        log "test set: $TEST_COUNT $PRESET scenes, seed $TEST_SEED (disjoint from training)"
        binpick mikado generate --preset "$PRESET" --count "$TEST_COUNT" --seed "$TEST_SEED" \
            --width "$IMAGE_WIDTH" --height "$IMAGE_HEIGHT" --workers "$WORKERS" --out "$DATA_DIR/test" \
            2>&1 | tee "$LOG_DIR/generate_test.log"
    fi
fi
TRAIN_SCENES=$({ find "$DATA_DIR/train/scenes" -mindepth 2 -maxdepth 2 -name scene.json -not -path '*/.*' 2>/dev/null || true; } | wc -l)
# Validation frames bound the time each validation takes: 5 % of the scenes, 1 to 48.
VAL_COUNT=${VAL_COUNT:-$(( TRAIN_SCENES / 20 < 1 ? 1 : (TRAIN_SCENES / 20 > 48 ? 48 : TRAIN_SCENES / 20) ))}
log "training scenes on disk: $TRAIN_SCENES"
if has_stage train && ((TRAIN_SCENES == 0)); then log "no training scenes in $DATA_DIR/train: nothing to train on"; exit 1; fi

if has_stage train; then
    if [[ -z "${TIME_BUDGET:-}" ]]; then
        # Leave RESERVE (default ~15 % of the total, at least 60 s) for export, evaluation and the card.
        reserve=$((TOTAL_BUDGET * 15 / 100)); ((reserve < 60)) && reserve=60
        reserve=${RESERVE:-$reserve}
        TIME_BUDGET=$((TOTAL_BUDGET - $(elapsed) - reserve))
        ((TIME_BUDGET < 10)) && TIME_BUDGET=10
    fi
    log "training $WIDTH ($INPUT) for ${TIME_BUDGET}s: crops ${CROP}, batch $BATCH, lr $LR"
    if [[ -n "${INIT_FROM:-}" ]]; then
        # Warm start: the checkpoint's network and weights (an RGB one widened for --input rgbd).
        log "starting from $INIT_FROM (blocks frozen: ${FREEZE_BLOCKS:-0})"
        command=(finetune --checkpoint "$INIT_FROM" --freeze-blocks "${FREEZE_BLOCKS:-0}")
    else
        command=(train --width "$WIDTH")
        [[ -n "${ENCODER_WEIGHTS:-}" ]] && command+=(--encoder-weights "$ENCODER_WEIGHTS")
    fi
    binpick "${command[@]}" --data "$DATA_DIR/train" --out "$RUN_DIR" --input "$INPUT" \
        --crop "$CROP" --batch-size "$BATCH" --crops-per-scene "${CROPS_PER_SCENE:-1}" --lr "$LR" \
        --time-budget "$TIME_BUDGET" "${noise[@]}" \
        --workers "$LOADER_WORKERS" --val-every "${VAL_EVERY:-1000}" --val-count "$VAL_COUNT" \
        2> >(tee "$LOG_DIR/train.stderr.log" >&2) | tee "$LOG_DIR/train.log"
fi

if has_stage export; then
    if [[ "$EXPORT" == dynamic ]]; then
        size=(--dynamic)
    elif [[ "$EXPORT" =~ ^([0-9]+)x([0-9]+)$ ]]; then
        size=(--height "${BASH_REMATCH[1]}" --width "${BASH_REMATCH[2]}")
    else
        log "EXPORT=$EXPORT: expected 'dynamic' or HEIGHTxWIDTH such as 512x640"; exit 2
    fi
    log "exporting $RUN_DIR/best.pt -> $MODEL (${size[*]})"
    binpick export --checkpoint "$RUN_DIR/best.pt" --onnx "$MODEL" "${size[@]}" --model-id "$MODEL_ID" \
        2>&1 | tee "$LOG_DIR/export.log"
fi

if has_stage eval; then
    if ! "$PYTHON" -c "import edge._hotpath" 2>/dev/null && [[ -x scripts/build_native_inplace.sh ]]; then
        log "native hot path not importable: trying scripts/build_native_inplace.sh"
        BINPICK_PYTHON="$PYTHON" scripts/build_native_inplace.sh >"$LOG_DIR/build_native.log" 2>&1 \
            || log "native build failed (see $LOG_DIR/build_native.log): instance-level scores will be skipped"
    fi
    log "evaluating $MODEL on $DATA_DIR/test (pixel-exact tolerance)"
    binpick eval --model "$MODEL" --data "$DATA_DIR/test" --out "$RUN_DIR/eval" --tolerance pixel \
        --no-progress "${noise[@]}" 2>&1 | tee "$LOG_DIR/eval.log"
fi

if has_stage card; then
    card=${CARD:-$(dirname "$MODEL")/README.md}
    notes=(--note "Made by scripts/make_bundled_model.sh (training and test sets generated with different base seeds).")
    log "writing the model card $card"
    binpick model-card --model "$MODEL" --eval "$RUN_DIR/eval/eval.json" --out "$card" "${notes[@]}"
fi

if [[ -n "${OUT:-}" ]]; then
    for f in "$RUN_DIR/log.csv" "$RUN_DIR/config.json" "$RUN_DIR/eval/eval.json" "$RUN_DIR/eval/pr.png" \
        "${CARD:-$(dirname "$MODEL")/README.md}"; do
        [[ -f "$f" ]] && cp "$f" "$OUT/"
    done
    [[ -d "$RUN_DIR/tensorboard" ]] && cp -r "$RUN_DIR/tensorboard" "$OUT/"
fi
log "done in $(elapsed)s: $MODEL"
