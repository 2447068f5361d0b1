#!/usr/bin/env bash
# Transcribe a large list of audio files as a SLURM job array: each task takes every Nth line of the list
# and writes its own JSONL, so a failed or re-run task touches nothing else.
#
#   sbatch --array=0-15 --gres=gpu:1 scripts/asr_slurm_array.sh files.txt mms1b_all.pt fra out/
#   cat out/part-*.jsonl > all.jsonl
#
#SBATCH --job-name=mms-asr
#SBATCH --cpus-per-task=4
set -euo pipefail
list=$1 model=$2 lang=$3 outdir=$4
task=${SLURM_ARRAY_TASK_ID:-0}
tasks=${SLURM_ARRAY_TASK_COUNT:-1}
mkdir -p "$outdir"
part=$(printf '%s/part-%04d' "$outdir" "$task")
awk -v n="$tasks" -v k="$task" '(NR - 1) % n == k' "$list" > "$part.list"
# exit status 1 means some inputs failed; their errors are in the JSONL, the rest is written
mms asr --model "$model" --lang "$lang" --manifest "$part.list" --format jsonl --output "$part.jsonl" || [ $? -eq 1 ]
