#!/usr/bin/env bash
# Creates batch-images/trainer/.venv with the pinned trainer dependencies (requirements.lock,
# requirements-dev.lock), the contract package (contract/python) and the package itself (editable). torch from PyPI carries the CUDA
# libraries (several GB): uv keeps them in its cache, so only the first run downloads them.
# Idempotent: a stamp of the lock files skips all work when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed"
contract="$(cd "$here/../../contract/python" && pwd)"
want="$(cat "$here/requirements.lock" "$here/requirements-dev.lock" "$here/pyproject.toml" "$contract/pyproject.toml" "$0" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
log() { printf '[trainer venv] %s\n' "$*" >&2; }
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  log "warning: $("$python" --version) is not the Python 3.11 the lock files were resolved for"
fi
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
if [[ ! -x "$venv/bin/uv" ]]; then
  log "installing uv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==0.9.5"
fi
log "installing the pinned dependencies (first run: torch and its CUDA libraries, a few GB; later runs: the uv cache)"
# uv prints its own progress (resolved, prepared, installed) on stderr.
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" \
  -r "$here/requirements.lock" -r "$here/requirements-dev.lock"
# The contract package (contract/python: the catalog and platform contract loaders) and the trainer, editable.
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" --no-deps -e "$contract" -e "$here"
"$venv/bin/python" -c 'import torch, transformers, peft, accelerate, safetensors, boto3, ft_contract, ft_trainer' ||
  { log "the environment does not import; delete $venv and run again"; exit 1; }
echo "$want" >"$stamp"
log "ready: $venv"
