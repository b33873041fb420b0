#!/usr/bin/env bash
# Creates test/sdk/.venv with the SDKs the e2e suite drives the local platform with (requirements.lock,
# hashes checked). Idempotent: a stamp of the lock file skips all work when nothing changed. Small (a few
# MB); pip keeps its own cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.installed"
want="$(cat "$here/requirements.lock" "$0" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
log() { printf '[sdk venv] %s\n' "$*" >&2; }
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
log "installing the pinned SDKs (zhipuai, pytest)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$here/requirements.lock"
"$venv/bin/python" -c 'import zhipuai, pytest' || { log "the environment does not import; delete $venv and run again"; exit 1; }
echo "$want" >"$stamp"
log "ready: $venv"
