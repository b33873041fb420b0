#!/usr/bin/env bash
# The trainer's checks in its project-local environment: ruff (lint + format), optionally mypy
# (TRAINER_MYPY=1; about 2 minutes on a cold cache), then pytest. Arguments go to pytest.
# LocalStack tests run when AWS_ENDPOINT_URL is set; REQUIRE_LOCALSTACK=1 makes them fail instead of skip.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup-venv.sh"
cd "$here"
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
if [[ "${TRAINER_MYPY:-0}" == "1" ]]; then
  .venv/bin/mypy
fi
exec .venv/bin/python -m pytest -q -rfEs "$@"
