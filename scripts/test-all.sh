#!/usr/bin/env bash
# The whole test suite, as `npm test` runs it (and CI, through .ci/run):
# lint + types, unit and infra tests, then everything that needs LocalStack under one LocalStack:
# the integration tests and the trainer's pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }
start=$(date +%s)
# Node 20 is supported; the AWS SDK's notice about its future Node 22 floor only adds noise to the log.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

step "lint (biome)"
npx biome check .
step "types (tsc)"
npx tsc --noEmit -p tsconfig.json
step "unit + infra tests (vitest)"
npx vitest run --project unit --project infra
step "trainer environment (Python venv with pinned torch, transformers, peft)"
bash batch-images/trainer/scripts/setup-venv.sh
step "SDK test environment (Python venv with the pinned zhipuai SDK)"
bash test/sdk/setup-venv.sh
step "Chromium for the console's browser tests (apt-get install chromium when missing)"
bash scripts/ensure-chromium.sh
step "integration tests against LocalStack (vitest), the trainer's tests (pytest), e2e (openai and zhipuai SDKs)"
# A LocalStack of its own on a free port: a running `npm start` (on 4566) is left alone.
LOCALSTACK_PORT=0 REQUIRE_LOCALSTACK=1 npx tsx local/localstack/with-localstack.ts bash scripts/test-with-localstack.sh

printf '\nAll test suites passed in %ss\n' "$(( $(date +%s) - start ))"
