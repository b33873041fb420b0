#!/usr/bin/env bash
# Runs inside local/localstack/with-localstack.ts, which exports AWS_ENDPOINT_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_ENDPOINT_URL:?run through local/localstack/with-localstack.ts}"
status=0
npx vitest run --project integration || status=1
bash batch-images/trainer/scripts/test.sh || status=1
npx vitest run --project e2e || status=1
exit $status
