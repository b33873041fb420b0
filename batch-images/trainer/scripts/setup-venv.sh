#!/usr/bin/env bash
# Creates batch-images/trainer/.venv with the pinned trainer dependencies (PyPI only). torch from PyPI
# carries the CUDA libraries (several GB): uv keeps them in its cache (~/.cache/uv), so only the first
# run downloads. Idempotent: a stamp of the lock files skips work when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed"
want="$(cat "$here/requirements.lock" "$here/requirements-dev.lock" "$here/pyproject.toml" "$0" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
log() { printf '[trainer venv] %s\n' "$*" >&2; }
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
if [[ ! -x "$venv/bin/uv" ]]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "uv==0.9.5"
fi
log "installing pinned dependencies (the first run downloads torch, a few GB; later runs use the uv cache)"
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" \
  -r "$here/requirements.lock" -r "$here/requirements-dev.lock"
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" --no-deps -e "$here"
echo "$want" >"$stamp"
log "ready"
