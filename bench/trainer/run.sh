#!/usr/bin/env bash
# npm run bench:trainer — tokens/s, MFU and peak memory of this trainer vs. plain HF Trainer + PEFT.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bash "$root/batch-images/trainer/scripts/setup-venv.sh"
exec "$root/batch-images/trainer/.venv/bin/python" "$root/bench/trainer/run.py" "$@"
