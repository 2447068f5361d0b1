#!/usr/bin/env bash
# Train demo-model candidates on one GPU in one call (docs/train.md, "On a GPU"). Prepared here, run there:
#
#   python scripts/make_demo_models.py corpus --plan-only --work .gpu/plan --train-per-language 10000
#   scripts/gpu_demo_train.sh            # on the GPU machine, from the repository root
#
# The GPU machine needs no wordfreq and no espeak-ng package: the corpus plan (manifests with every utterance's
# text, voice and pauses) comes from .gpu/plan, espeak-ng from .espeak/ (the binary, its libraries and data, copied
# from a Debian/Ubuntu machine), missing Python packages as wheels from .whl/. Two runs train side by side on the
# one GPU (RUNS="small medium"; one of them alone gets the whole GPU): "small" continues the shipped demo model's
# encoder, "medium" (~3M weights) starts from random weights, "wide" continues the model directory $WIDE_BASE (carried
# to the machine: e.g. docs/train.md's stage 4, 2.8M weights trained on the CPU).
# Their exported model directories come back as $OUT/<run>.tgz.* (split into 16 MB pieces).
set -u
OUT=${OUT:-gpu-out}
MINUTES=${MINUTES:-3.5}      # training time of each run (the learning rate decays to zero by then)
DEVICE=${DEVICE:-cuda}
SYNTH_SECONDS=${SYNTH_SECONDS:-90}
RUNS=${RUNS:-small medium}   # which candidates to train (side by side): small, medium, wide
WIDE_BASE=${WIDE_BASE:-.gpu/wide-base}
WORK=${WORK:-/tmp/demo-gpu}
mkdir -p "$OUT" "$WORK/corpus"
PLAN=${PLAN:-.gpu/plan}
if ! python3 -c "import soundfile, soxr" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
if [ -d .espeak ]; then
    export PATH=$PWD/.espeak/bin:$PATH LD_LIBRARY_PATH=$PWD/.espeak/lib ESPEAK_DATA_PATH=$PWD/.espeak/share
fi
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/run.log"; }
log "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo no nvidia-smi); $(nproc) cores"

cp "$PLAN"/corpus/*.*.jsonl "$WORK/corpus/"
timeout "$SYNTH_SECONDS" python3 scripts/make_demo_models.py synth --work "$WORK" --workers "$(( $(nproc) * 2 ))" \
    2>&1 | tail -n 3 | tee -a "$OUT/run.log"
for split in train dev; do cat "$WORK"/corpus/$split.*.jsonl > "$WORK/corpus/$split.jsonl"; done
log "synthesised: $(find "$WORK/corpus" -name '*.wav' | wc -l) files, $(du -sh "$WORK/corpus" | cut -f1)"

train() {  # run-name, then make_demo_models.py train options
    local name=$1; shift
    mkdir -p "$WORK/$name"
    ln -sfn "$WORK/corpus" "$WORK/$name/corpus"
    timeout $(python3 -c "print(int($MINUTES * 60 + 150))") python3 scripts/make_demo_models.py train \
        --work "$WORK/$name" --device "$DEVICE" --time-limit "$MINUTES" --epochs 1000 --threads 4 "$@" \
        > "$OUT/$name.log" 2>&1
    log "$name finished (rc $?): $(tail -n 1 "$OUT/$name.log" | cut -c1-300)"
}
for name in $RUNS; do
    case $name in
        small) train small --base mms/configs/demo --lr 1e-3 --batch-seconds 300 --warmup-steps 300 & ;;
        medium) train medium --size medium --lr 2e-3 --batch-seconds 300 --warmup-steps 500 --precision bf16 & ;;
        wide) [ -f "$WIDE_BASE/config.json" ] || { log "wide: no model directory at WIDE_BASE=$WIDE_BASE"; continue; }
              train wide --base "$WIDE_BASE" --lr 1e-3 --batch-seconds 300 --warmup-steps 300 & ;;
        *) log "unknown run $name (small, medium, wide)" ;;
    esac
done
wait
for name in $RUNS; do
    # the exported best epoch and its log; not the resumable state (its optimizer moments would not fit the way back)
    tar czf "$WORK/$name.tgz" --exclude=train_state.pt -C "$WORK/$name" model \
        && split -b 16000000 "$WORK/$name.tgz" "$OUT/$name.tgz."
done
log "done: $(ls "$OUT" | tr '\n' ' ')"
