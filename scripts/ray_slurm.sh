#!/usr/bin/env bash
# Ray on a SLURM allocation: the head on the first node, one worker on each other node, then one `mms ...
# --engine ray` driver on the head. Ray Data spreads the model actors (--workers) over every GPU it sees.
#
#   sbatch --nodes=4 --gres=gpu:8 --ntasks-per-node=1 --cpus-per-task=32 scripts/ray_slurm.sh \
#          asr --manifest corpus.tsv --output-dir run/ --model mms-1b-all --lang fra --workers 32 --gpus-per-worker 1
#   mms merge run/ --output all.jsonl
#
# run/ must be on storage every node sees (each actor writes its own run/part-ray-*.jsonl).
#SBATCH --job-name=mms-ray
set -euo pipefail
nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head=${nodes[0]}
port=6379
srun --nodes=1 --ntasks=1 -w "$head" ray start --head --port=$port --block &
sleep 15
for node in "${nodes[@]:1}"; do
  srun --nodes=1 --ntasks=1 -w "$node" ray start --address="$head:$port" --block &
done
sleep 15
mms "$@" --engine ray --ray-address "$head:$port" || [ $? -eq 1 ]
ray stop
