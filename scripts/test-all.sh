#!/usr/bin/env bash
# The whole test suite, as `npm test` runs it (and CI, through .ci/run):
# lint + types, unit and infra tests, then everything that needs LocalStack under one LocalStack:
# the integration tests and the trainer's pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }
start=$(date +%s)

step "lint (biome)"
npx biome check .
step "types (tsc)"
npx tsc --noEmit -p tsconfig.json
step "unit + infra tests (vitest)"
npx vitest run --project unit --project infra
step "trainer environment"
bash batch-images/trainer/scripts/setup-venv.sh
step "integration tests against LocalStack (vitest + pytest)"
REQUIRE_LOCALSTACK=1 npx tsx local/localstack/with-localstack.ts bash scripts/test-with-localstack.sh

printf '\nAll test suites passed in %ss\n' "$(( $(date +%s) - start ))"
