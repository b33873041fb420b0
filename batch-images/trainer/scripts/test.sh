#!/usr/bin/env bash
# The trainer's checks in its project-local environment: ruff (lint + format), optionally mypy
# (TRAINER_MYPY=1; about 2 minutes on a cold cache), then pytest. Arguments go to pytest.
# LocalStack tests run when AWS_ENDPOINT_URL is set; REQUIRE_LOCALSTACK=1 makes them fail instead of skip.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup-venv.sh"
cd "$here"
.venv/bin/ruff check src tests ../inference
.venv/bin/ruff format --check src tests ../inference
if [[ "${TRAINER_MYPY:-0}" == "1" ]]; then
  .venv/bin/mypy
fi
# The inference proxy's tests (batch-images/inference) run here too: they need no vLLM. With arguments,
# only what they name runs.
if [[ $# -eq 0 ]]; then
  set -- tests ../inference/tests
fi
exec .venv/bin/python -m pytest -c pyproject.toml -q -rfEs "$@"
