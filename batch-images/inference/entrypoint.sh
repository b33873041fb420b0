#!/usr/bin/env bash
# Syncs the weights from S3, starts vLLM on 127.0.0.1:$VLLM_PORT and the adapter proxy on :$PORT, and
# exits (non-zero) as soon as either one does, so that ECS replaces the task. Environment: README.md.
set -euo pipefail

# A full-parameter model's deployment is either started with BASE_MODEL, SERVED_MODEL_NAME (its code),
# MODEL_ARTIFACT_URI and MODEL_FAMILY set (the deployer), or knows only its code (CDK context
# fullModelDeployments): then the models table and the catalog tell the rest.
if [[ -n "${MODEL_CODE:-}" && -z "${MODEL_ARTIFACT_URI:-}" ]]; then
  assignments="$(python3 -m ft_inference.lookup)"
  eval "export $assignments"
fi
: "${BASE_MODEL:?BASE_MODEL is required}"
MODEL_DIR="${MODEL_DIR:-/models/weights}"
VLLM_PORT="${VLLM_PORT:-8000}"
export VLLM_PORT PORT="${PORT:-8080}" SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$BASE_MODEL}"

if [[ -n "${MODEL_ARTIFACT_URI:-}" ]]; then
  weights="$MODEL_ARTIFACT_URI"  # a full-parameter model's own deployment
elif [[ -n "${BASE_MODEL_URI:-}" ]]; then
  weights="$BASE_MODEL_URI"  # the catalog entry's weights prefix (CDK sets it from contract/catalog.json)
else
  : "${ARTIFACTS_BUCKET:?ARTIFACTS_BUCKET is required without MODEL_ARTIFACT_URI or BASE_MODEL_URI}"
  prefix="$(python3 -c 'import sys; from ft_contract import load_platform; print(load_platform().base_model_prefix(sys.argv[1]))' "$BASE_MODEL")"
  weights="s3://${ARTIFACTS_BUCKET}/${prefix}"
fi
if [[ ! -f "$MODEL_DIR/config.json" ]]; then
  python3 -m ft_inference.s3sync "$weights" "$MODEL_DIR"
fi

args=(
  serve "$MODEL_DIR"
  --host 127.0.0.1 --port "$VLLM_PORT"
  --served-model-name "$SERVED_MODEL_NAME"
  --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.90}"
  --tensor-parallel-size "${TENSOR_PARALLEL_SIZE:-1}"
  # ChatGLM3 ships its model code with the weights; the weights come from our own bucket only.
  --trust-remote-code
)
[[ -n "${MAX_MODEL_LEN:-}" ]] && args+=(--max-model-len "$MAX_MODEL_LEN")
if [[ -z "${MODEL_ARTIFACT_URI:-}" ]]; then
  # The catalog's largest lora_r by default: every adapter a job may train loads (contract/catalog.json).
  max_lora_rank="${MAX_LORA_RANK:-$(python3 -c 'from ft_contract import load_catalog; print(load_catalog().max_lora_rank)')}"
  args+=(
    --enable-lora
    --max-loras "${MAX_LORAS:-8}"
    --max-lora-rank "$max_lora_rank"
    --max-cpu-loras "${MAX_CPU_LORAS:-32}"
  )
fi
# The prompt format must be the one the trainer used (ft_trainer.chat_format), not the model's own
# default (Qwen's adds a system prompt the training data never had).
family="${MODEL_FAMILY:-}"
if [[ -z "$family" && -f "$MODEL_DIR/ft_model.json" ]]; then
  family="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("family", ""))' "$MODEL_DIR/ft_model.json")"
fi
templates="${CHAT_TEMPLATES_DIR:-/opt/inference/chat-templates}"
if [[ -n "$family" ]]; then
  if [[ ! -f "$templates/$family.jinja" ]]; then
    echo "no chat template for the family '$family' in $templates: it would be served in another format than it was trained in" >&2
    exit 1
  fi
  args+=(--chat-template "$templates/$family.jinja")
fi

vllm "${args[@]}" &
vllm_pid=$!
python3 -m ft_inference.proxy &
proxy_pid=$!
trap 'kill -TERM "$vllm_pid" "$proxy_pid" 2>/dev/null || true' TERM INT
set +e
wait -n "$vllm_pid" "$proxy_pid"
status=$?
kill -TERM "$vllm_pid" "$proxy_pid" 2>/dev/null
wait
exit "$(( status == 0 ? 1 : status ))"
