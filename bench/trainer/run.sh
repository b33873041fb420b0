#!/usr/bin/env bash
# npm run bench:trainer — tokens/s, MFU and peak memory of this trainer vs. plain HF Trainer + PEFT.
# npm run bench:trainer -- --distributed — also FSDP2 full-parameter training under torchrun: 1 and 2 CPU
# processes (gloo), or every GPU (NCCL) of a CUDA machine with the ~1B-parameter model.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bash "$root/batch-images/trainer/scripts/setup-venv.sh"
python="$root/batch-images/trainer/.venv/bin/python"
if [[ "${1:-}" == "--distributed" ]]; then
  shift
  if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    sizes=("$("$python" -c 'import torch; print(torch.cuda.device_count())')")
  else
    sizes=(1 2)
  fi
  printf '%-40s%14s%16s%8s%14s\n' "FSDP2 full-parameter (torchrun)" "tokens/s" "tokens/s/device" "MFU" "peak mem GiB"
  for n in "${sizes[@]}"; do
    OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --standalone --nproc-per-node "$n" \
      "$root/bench/trainer/distributed.py" 2>/dev/null | tail -n 1
  done
fi
exec "$python" "$root/bench/trainer/run.py" "$@"
