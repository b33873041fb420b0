"""The Batch container's entrypoint: environment in, result in OUTPUT_URI out, exit 0 only when complete.

Exit codes: 0 success; 2 bad input (configuration, data, URIs outside the tenant, missing weights);
3 out of memory; 1 anything else. Each failure also becomes an `error` event on the job.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .chat_format import FAMILIES, Family
from .config import ConfigError, JobConfig, from_environment
from .events import DynamoEventSink, EventSink, JobProgress, Level, PrintSink
from .storage import ObjectStore, S3Uri, check_base_model_uri, check_tenant_uri


def detect_family(model_dir: Path) -> Family:
    marker = model_dir / "ft_model.json"
    if marker.is_file():
        family = json.loads(marker.read_text()).get("family")
        if family in FAMILIES:
            return family  # type: ignore[no-any-return]
    config = (
        json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    )
    model_type = str(config.get("model_type", ""))
    if model_type == "chatglm":
        return "chatglm3"
    if model_type in ("glm4", "glm"):
        return "glm4"
    if model_type.startswith("qwen"):
        return "chatml"
    raise ConfigError(f"cannot tell the chat format of {model_dir}; set MODEL_FAMILY")


def _crash_hook() -> int | None:
    """FT_TEST_CRASH_AFTER_STEP: tests stop the run after that step, as a reclaimed Spot host would."""
    value = os.environ.get("FT_TEST_CRASH_AFTER_STEP")
    return int(value) if value else None


class WithProgress:
    """Events as they are, and each metrics event's trained tokens and ETA onto the job item."""

    def __init__(self, events: EventSink, progress: JobProgress) -> None:
        self._events, self._progress = events, progress

    def message(self, text: str, level: Level = "info", data: dict[str, Any] | None = None) -> None:
        self._events.message(text, level, data)

    def metrics(self, data: dict[str, Any]) -> None:
        self._events.metrics(data)
        eta = data.get("eta_seconds")
        self._progress.update(int(data.get("trained_tokens", 0)), float(eta) if eta is not None else None)


def run(config: JobConfig, events: EventSink, store: ObjectStore, work: Path) -> dict[str, object]:
    training = check_tenant_uri(config.training_file_uri, config.tenant_id, "training file")
    validation = (
        check_tenant_uri(config.validation_file_uri, config.tenant_id, "validation file")
        if config.validation_file_uri
        else None
    )
    output = check_tenant_uri(config.output_uri, config.tenant_id, "output")
    base = check_base_model_uri(config.base_model_uri)
    done = store.get_text(output.child("result.json"))
    if done is not None:
        # A Batch retry after the result was complete (the container died before it could exit 0).
        events.message("The result is already complete in the output location; nothing to do")
        return dict(json.loads(done))

    events.message("Downloading the base model and the training data")
    if isinstance(base, S3Uri):
        model_dir = work / "base-model"
        if store.download_prefix(base, model_dir) == 0:
            raise ConfigError(f"no weights under {base}")
    else:
        model_dir = base
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"missing weights: {config.base_model_uri} has no config.json")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise ConfigError(f"missing weights: {config.base_model_uri} has no *.safetensors or *.bin files")
    family = config.family or detect_family(model_dir)
    train_file = store.download_file(training, work / "data" / "train.jsonl")
    valid_file = store.download_file(validation, work / "data" / "valid.jsonl") if validation else None

    out_dir = work / "output"
    # Resume: fetch the newest complete checkpoint (one with checkpoint.json) from OUTPUT_URI.
    checkpoint_keys = store.list_keys(output.child("checkpoints/"))
    complete = sorted(
        {
            int(k.split("/checkpoints/step-")[1].split("/")[0])
            for k in checkpoint_keys
            if k.endswith("/checkpoint.json")
        }
    )
    if complete:
        step = complete[-1]
        store.download_prefix(
            output.child(f"checkpoints/step-{step}"), out_dir / "checkpoints" / f"step-{step}"
        )

    # torch and transformers load only now: bad input is reported in a second, not after ten.
    from .train import TrainRequest, run_training

    def upload_checkpoint(step: int, path: Path) -> None:
        store.upload_dir(path, output.child(f"checkpoints/step-{step}"), last="checkpoint.json")

    result = run_training(
        TrainRequest(
            base_model=model_dir,
            family=family,
            method=config.method,
            hyperparameters=config.hyperparameters,
            training_file=train_file,
            validation_file=valid_file,
            output_dir=out_dir,
            events=events,
            on_checkpoint=upload_checkpoint,
            crash_after_step=_crash_hook(),
        )
    )
    name = "adapter" if config.method == "lora" else "model"
    store.upload_dir(result.result_dir, output.child(name))
    if (out_dir / "metrics.jsonl").is_file():
        store.upload_file(out_dir / "metrics.jsonl", output.child("metrics.jsonl"))
    summary = {
        "job_id": config.job_id,
        "method": config.method,
        "family": family,
        "steps": result.steps,
        "trained_tokens": result.trained_tokens,
        "final_loss": result.final_loss,
        "valid_loss": result.valid_loss,
        "valid_token_accuracy": result.valid_token_accuracy,
        "resumed_from": result.resumed_from,
        "result": str(output.child(name)),
        "finished_at": int(time.time()),
    }
    # Written last: its presence means the result is complete.
    store.put_text(output.child("result.json"), json.dumps(summary))
    return summary


def main() -> None:
    events: EventSink = PrintSink()
    try:
        config = from_environment()
        if config.events_table:
            events = DynamoEventSink(config.events_table, config.tenant_id, config.job_id)
        if config.jobs_table:
            events = WithProgress(events, JobProgress(config.jobs_table, config.tenant_id, config.job_id))
        with tempfile.TemporaryDirectory(prefix="ft-job-", dir=os.environ.get("FT_WORK_DIR")) as tmp:
            summary = run(config, events, ObjectStore(), Path(tmp))
        events.message(f"Training finished: {summary['steps']} steps, final loss {summary['final_loss']:.4f}")
        sys.exit(0)
    except ConfigError as error:
        _fail(events, f"Bad input: {error}", 2)
    except Exception as error:  # noqa: BLE001 — every failure must become an event and an exit code
        import torch

        if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
            _fail(
                events,
                "Out of memory: lower batch_size or max_seq_length, or enable gradient_checkpointing",
                3,
            )
        _fail(events, f"Training failed: {type(error).__name__}: {error}", 1)


def _fail(events: EventSink, message: str, code: int) -> None:
    try:
        events.message(message, level="error")
    finally:
        print(message, file=sys.stderr, flush=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
