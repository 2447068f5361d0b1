#!/usr/bin/env bash
# The GPU checks of one lent-machine session, in one call (device time is scarce: one start, one script).
#   * benchmarks/gpu.py at full MMS-1B shape (fp32/bf16/fp16, mms vs transformers, CUDA vs CPU logits);
#   * the same in bf16 with torch.compile, to see whether --compile pays;
#   * the demo model through the CLI on CUDA (asr, lid, align) next to the CPU, transcripts compared.
# Run from the repository root. Wheels for packages the machine's image lacks (soundfile, soxr, cffi) may sit in
# .whl/; outputs go to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/nvidia-smi.txt"

timeout 300 python3 benchmarks/gpu.py 2>&1 | tee "$OUT/gpu.txt"
timeout 200 python3 benchmarks/gpu.py --dtypes bfloat16 --compile --no-transformers --utterances 32 --repeats 2 \
    2>&1 | tee "$OUT/gpu-compile.txt"

{
    for dev in cpu cuda; do
        echo "== $dev"
        timeout 60 python3 -m mms asr --model demo --device "$dev" --lang auto --lid-model demo examples/*.wav
        timeout 60 python3 -m mms lid --model demo --device "$dev" examples/*.wav
        timeout 60 python3 -m mms align --model demo --device "$dev" --lang eng --audio examples/eng_story.wav \
            --text examples/eng_story.txt --outdir "/tmp/align-$dev" && head -c 600 /tmp/align-$dev/manifest.json
        echo
    done
} 2>&1 | tee "$OUT/cli.txt"
