#!/usr/bin/env bash
# A corpus as a SLURM job array: each array task runs one shard (--shard auto reads SLURM_ARRAY_TASK_ID and
# SLURM_ARRAY_TASK_COUNT); a failed or requeued task resumes where it stopped (--output-dir and align's --outdir
# resume by default). When the array is done, one merge gives one record per input.
#
#   sbatch --array=0-15 --gres=gpu:1 scripts/slurm_array.sh asr --manifest corpus.tsv --output-dir run/ \
#          --model mms-1b-all --lang fra
#   mms merge run/ --output all.jsonl                  # after the array (sbatch --dependency=afterok:JOBID ...)
#
#   sbatch --array=0-7 scripts/slurm_array.sh lid --manifest corpus.tsv --output-dir lid/
#   sbatch --array=0-7 scripts/slurm_array.sh tts --lang eng --file lines.txt --output-dir voice/
#   sbatch --array=0-7 scripts/slurm_array.sh align --manifest pairs.jsonl --outdir aligned/ --lang eng
#SBATCH --job-name=mms
#SBATCH --cpus-per-task=4
#SBATCH --requeue
set -euo pipefail
# exit status 1 means some inputs failed: their errors are records, the rest is written
mms "$@" --shard auto || [ $? -eq 1 ]
