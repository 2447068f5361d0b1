#!/usr/bin/env bash
# One process per GPU with torchrun: each rank runs one shard (--shard auto reads RANK and WORLD_SIZE) on its
# own GPU (LOCAL_RANK); then one merge.
#
#   torchrun --nproc-per-node=8 --no-python scripts/torchrun.sh asr --manifest corpus.tsv --output-dir run/ \
#            --model mms-1b-all --lang fra
#   mms merge run/ --output all.jsonl
set -euo pipefail
mms "$@" --shard auto --device "cuda:${LOCAL_RANK:-0}" || [ $? -eq 1 ]
