#!/usr/bin/env bash
# The trainer's checks in its project-local environment: ruff (lint + format), optionally mypy
# (TRAINER_MYPY=1; about 2 minutes on a cold cache), then pytest. Arguments go to pytest.
# LocalStack tests run when AWS_ENDPOINT_URL is set; REQUIRE_LOCALSTACK=1 makes them fail instead of skip.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup-venv.sh"
cd "$here"
.venv/bin/ruff check src tests ../inference ../../contract/python
.venv/bin/ruff format --check src tests ../inference ../../contract/python
if [[ "${TRAINER_MYPY:-0}" == "1" ]]; then
  .venv/bin/mypy
fi
# With arguments, only what they name runs. Without, the trainer's tests and then, as a session of its
# own (each directory has a conftest.py, and one session would import only one of them), the inference
# proxy's tests (batch-images/inference: they need no vLLM), then the contract's (contract/python).
if [[ $# -gt 0 ]]; then
  exec .venv/bin/python -m pytest -c pyproject.toml -q -rfEs "$@"
fi
status=0
.venv/bin/python -m pytest -c pyproject.toml -q -rfEs tests || status=1
(cd ../inference && "$here/.venv/bin/python" -m pytest -q -rfEs tests) || status=1
# The contract's fixtures, checked against the Python loaders (vitest checks them against TypeScript).
(cd ../../contract/python && "$here/.venv/bin/python" -m pytest -q -rfEs -p no:cacheprovider tests) || status=1
exit $status
