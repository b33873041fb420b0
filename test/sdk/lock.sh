#!/usr/bin/env bash
# Recompiles requirements.lock from requirements.in (uv from the trainer's venv, which setup-venv.sh
# of the trainer makes), then reinstalls the SDK venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
uv="$here/../../batch-images/trainer/.venv/bin/uv"
[[ -x "$uv" ]] || bash "$here/../../batch-images/trainer/scripts/setup-venv.sh"
cd "$here"
"$uv" pip compile --quiet --generate-hashes --python-version 3.11 requirements.in -o requirements.lock
bash "$here/setup-venv.sh"
