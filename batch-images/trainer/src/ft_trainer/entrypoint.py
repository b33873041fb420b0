"""The Batch container's entrypoint: environment in, result in OUTPUT_URI out, exit 0 only when complete.

Exit codes: 0 success; 2 bad input (configuration, data, URIs outside the tenant, missing weights);
3 out of memory; 143 stopped on request (SIGTERM: a pause, a Spot reclaim) after writing a checkpoint
that the next run resumes from (stop.py); 1 anything else. Each failure also becomes an `error` event on the job, which the tenant
reads: bad input and out of memory as they are, anything else as an internal error with the job id as its
reference, the details (type, message, traceback) on stderr for the operator only (failures.py).

Under torchrun (launch.py starts it) every rank runs this: each node's first rank downloads the inputs
for its node, every rank uploads the checkpoint shards it wrote, and rank 0 alone writes the result,
`result.json` and the progress events; any rank reports its own failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ft_contract import load_platform

from .chat_format import FAMILIES, Family
from .config import ConfigError, JobConfig, from_environment
from .distributed import DistEnv, barrier, init_distributed, launched_by_torchrun, shutdown
from .events import DynamoEventSink, EventSink, JobProgress, Level, PrintSink
from .failures import classify, operator_report
from .storage import ObjectStore, S3Uri, check_base_model_uri, check_tenant_uri
from . import stop

# contract/platform.json: the output's layout and the exit codes, as the Lambdas read them.
CONTRACT = load_platform()


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


class WithProgress:
    """Events as they are, and each metrics event's trained tokens and ETA onto the job item."""

    def __init__(self, events: EventSink, progress: JobProgress) -> None:
        self._events, self._progress = events, progress

    def message(self, text: str, level: Level = "info", data: dict[str, Any] | None = None) -> None:
        self._events.message(text, level, data)

    def metrics(self, data: dict[str, Any]) -> None:
        self._events.metrics(data)
        # A step's metrics carry the progress; the final full-validation line does not.
        if "trained_tokens" not in data:
            return
        eta = data.get("eta_seconds")
        self._progress.update(int(data["trained_tokens"]), float(eta) if eta is not None else None)


@dataclass(frozen=True)
class JobFiles:
    """Each input and output of the job: its checked URI (or the base model's local directory) and where
    it lives on this node."""

    base: S3Uri | Path
    training: S3Uri
    validation: S3Uri | None
    output: S3Uri
    model_dir: Path
    train_file: Path
    valid_file: Path | None
    out_dir: Path
    # INIT_MODEL_URI (a fine-tuned model to start from) and where it is downloaded to.
    init: S3Uri | None = None
    init_dir: Path | None = None


def locate(config: JobConfig, work: Path) -> JobFiles:
    """The job's URIs, checked against the tenant's prefix before anything is read, and their local paths."""
    training = check_tenant_uri(config.training_file_uri, config.tenant_id, "training file")
    validation = (
        check_tenant_uri(config.validation_file_uri, config.tenant_id, "validation file")
        if config.validation_file_uri
        else None
    )
    output = check_tenant_uri(config.output_uri, config.tenant_id, "output")
    base = check_base_model_uri(
        config.base_model_uri, config.base_model.weights_prefix if config.base_model else None
    )
    init = _check_init_model_uri(config) if config.init_model_uri else None
    return JobFiles(
        base=base,
        training=training,
        validation=validation,
        output=output,
        model_dir=work / "base-model" if isinstance(base, S3Uri) else base,
        train_file=work / "data" / "train.jsonl",
        valid_file=work / "data" / "valid.jsonl" if validation else None,
        out_dir=work / "output",
        init=init,
        init_dir=work / "init-model" if init else None,
    )


def _check_init_model_uri(config: JobConfig) -> S3Uri:
    """INIT_MODEL_URI: inside the tenant's prefix like every tenant URI, and the result directory of the
    job's method (a fine-tuned job's `adapter` for lora, `model` for full: result.json's `result`)."""
    uri = check_tenant_uri(config.init_model_uri or "", config.tenant_id, "init model")
    wanted = CONTRACT.result_dir(config.method).rstrip("/")
    if uri.key.rstrip("/").rsplit("/", 1)[-1] != wanted:
        raise ConfigError(
            f"init model {config.init_model_uri!r} must be a fine-tuned job's {wanted}/ directory "
            f"for method {config.method!r}"
        )
    return S3Uri(uri.bucket, uri.key.rstrip("/") + "/")


def run(
    config: JobConfig,
    *,
    events: EventSink,
    store: ObjectStore,
    work: Path,
    env: DistEnv | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """One training process of the job. `on_step` observes each optimizer step (see TrainRequest)."""
    env = env or init_distributed(want_group=config.method == "full" or launched_by_torchrun())
    files = locate(config, work)
    output = files.output
    done = store.get_text(output.child(CONTRACT.result_summary_name))
    if done is not None:
        # A Batch retry after the result was complete (the container died before it could exit 0).
        if env.is_main:
            events.message("The result is already complete in the output location; nothing to do")
        return dict(json.loads(done))

    if env.is_main:
        events.message(
            f"Starting on {env.world_size} process{'es' if env.world_size > 1 else ''} across {env.nodes} "
            f"node{'s' if env.nodes > 1 else ''}: downloading the base model and the training data",
            data={"world_size": env.world_size, "nodes": env.nodes},
        )
    model_dir, out_dir = files.model_dir, files.out_dir
    # Each node's first process fetches what every process of the node reads; the others wait.
    if env.is_local_main:
        _download_inputs(config, store, files)
    barrier(env)
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"missing weights: {config.base_model_uri} has no config.json")
    family = config.family or detect_family(model_dir)

    # torch and transformers load only now: bad input is reported in a second, not after ten.
    from .records import CheckpointFiles
    from .train import TrainRequest, run_training

    def upload_checkpoint(checkpoint: CheckpointFiles) -> None:
        prefix = output.child(CONTRACT.checkpoint_prefix(checkpoint.step))
        for file in checkpoint.files:
            store.upload_file(file, prefix.child(file.relative_to(checkpoint.directory).as_posix()))

    request = TrainRequest(
        base_model=model_dir,
        family=family,
        method=config.method,
        objective=config.objective,
        init_model=files.init_dir,
        hyperparameters=config.hyperparameters,
        training_file=files.train_file,
        validation_file=files.valid_file,
        output_dir=out_dir,
        events=events,
        on_checkpoint=upload_checkpoint,
        device=env.device,
        on_step=on_step,
        dist=env,
    )
    result = run_training(request)
    name = CONTRACT.result_dir(config.method).rstrip("/")
    summary: dict[str, object] = {
        "job_id": config.job_id,
        "method": config.method,
        "objective": config.objective,
        "family": family,
        "steps": result.steps,
        "trained_tokens": result.trained_tokens,
        "final_loss": result.final_loss,
        # Evaluation (job-status shows these as the job's training_summary).
        "delivered_step": result.delivered_step,
        "best_step": result.best_step,
        "early_stopped": result.early_stopped,
        **result.valid_metrics,
        # Null without validation data; DPO adds its full_valid_reward_* beside them.
        "full_valid_loss": None,
        "full_valid_mean_token_accuracy": None,
        **result.full_valid_metrics,
        "validation_split": result.validation_split.to_json() if result.validation_split else None,
        "resumed_from": result.resumed_from,
        "world_size": env.world_size,
        "nodes": env.nodes,
        "result": str(output.child(name)),
        "finished_at": int(time.time()),
    }
    if env.is_main:
        store.upload_dir(result.result_dir, output.child(name))
        for name in (CONTRACT.metrics_name, CONTRACT.results_csv_name):
            if (out_dir / name).is_file():
                store.upload_file(out_dir / name, output.child(name))
        # Written last: its presence means the result is complete.
        store.put_text(output.child(CONTRACT.result_summary_name), json.dumps(summary))
    barrier(env)
    return summary


def _download_inputs(config: JobConfig, store: ObjectStore, files: JobFiles) -> None:
    # The data first: a file that is not the validated one fails the job before gigabytes of weights.
    store.download_validated(files.training, files.train_file, config.training_file_etag, "training file")
    if files.validation and files.valid_file:
        store.download_validated(
            files.validation, files.valid_file, config.validation_file_etag, "validation file"
        )
    base, model_dir = files.base, files.model_dir
    if isinstance(base, S3Uri) and store.download_prefix(base, model_dir) == 0:
        raise ConfigError(f"no weights under {base}")
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"missing weights: {config.base_model_uri} has no config.json")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise ConfigError(f"missing weights: {config.base_model_uri} has no *.safetensors or *.bin files")
    if files.init is not None and files.init_dir is not None:
        _download_init_model(config, store, files.init, files.init_dir)
    # Resume: fetch the newest complete checkpoint (one with its manifest) from OUTPUT_URI, every
    # rank's shards included: DCP reshards them to this run's world size.
    checkpoints = files.output.child(CONTRACT.checkpoints_dir)
    complete = {
        step
        for key in store.list_keys(checkpoints)
        if key.endswith("/" + CONTRACT.manifest_name)
        and (step := CONTRACT.checkpoint_step(key[len(checkpoints.key.rstrip("/")) + 1 :])) is not None
    }
    if complete:
        step = max(complete)
        local = files.out_dir / CONTRACT.checkpoint_prefix(step)
        store.download_prefix(files.output.child(CONTRACT.checkpoint_prefix(step)), local)
        # And the best evaluation's checkpoint, whose weights the result may be restored to.
        manifest = json.loads((local / CONTRACT.manifest_name).read_text())
        best = (manifest.get("evaluation") or {}).get("best_step")
        if isinstance(best, int) and best != step and best in complete:
            store.download_prefix(
                files.output.child(CONTRACT.checkpoint_prefix(best)),
                files.out_dir / CONTRACT.checkpoint_prefix(best),
            )


def _download_init_model(config: JobConfig, store: ObjectStore, uri: S3Uri, dest: Path) -> None:
    """The fine-tuned model to start from, complete: a PEFT adapter, or full weights with their config."""
    if store.download_prefix(uri, dest) == 0:
        raise ConfigError(f"init model {config.init_model_uri!r} has no files")
    marker = "adapter_config.json" if config.method == "lora" else "config.json"
    weights = "adapter_model.*" if config.method == "lora" else "*.safetensors"
    if not (dest / marker).is_file() or not any(dest.glob(weights)):
        raise ConfigError(
            f"init model {config.init_model_uri!r} is incomplete: no {marker} or {weights} files"
        )


def main(*, on_step: Callable[[int], None] | None = None) -> None:
    """The container's training process: exits 0 only with the result complete in OUTPUT_URI. `on_step`
    observes each optimizer step (the container passes none)."""
    events: EventSink = PrintSink()
    env: DistEnv | None = None
    # SIGTERM (TerminateJob for a pause, a Spot reclaim) stops at the next step with a checkpoint.
    stop.install()
    try:
        config = from_environment()
        if config.events_table:
            events = DynamoEventSink(config.events_table, config.tenant_id, config.job_id)
        env = init_distributed(want_group=config.method == "full" or launched_by_torchrun())
        if config.jobs_table and env.is_main:
            events = WithProgress(events, JobProgress(config.jobs_table, config.tenant_id, config.job_id))
        # Each process its own scratch directory; the node's first one downloads into the shared one.
        work_root = os.environ.get("FT_WORK_DIR")
        with tempfile.TemporaryDirectory(prefix="ft-job-", dir=work_root) as tmp:
            work = _node_work_dir(Path(tmp), env)
            summary = run(config, events=events, store=ObjectStore(), work=work, env=env, on_step=on_step)
            if work != Path(tmp) and env.is_local_main:
                # Every process of the node is past run()'s last barrier: nothing reads it any more.
                shutil.rmtree(work, ignore_errors=True)
        if env.is_main:
            events.message(
                f"Training finished: {summary['steps']} steps, final loss {summary['final_loss']:.4f}"
            )
        shutdown(env)
        sys.exit(0)
    except stop.TrainingStopped:
        # Not a failure: the job's status (paused, or running while Batch retries) says what follows.
        if env is not None:
            shutdown(env)
        sys.exit(CONTRACT.exit_code("stopped"))
    except Exception as error:  # noqa: BLE001 — every failure must become an event and an exit code
        # The tenant reads the event (the job's error): only tenant-facing failures verbatim, anything
        # else as an internal error whose details go to the operator's log (failures.py).
        job_id = os.environ.get("JOB_ID")
        print(operator_report(error, job_id), file=sys.stderr, flush=True)
        failure = classify(error, job_id, out_of_memory=_out_of_memory(error))
        _fail(events, failure.message, code=failure.exit_code, env=env)


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    import torch

    return isinstance(error, torch.OutOfMemoryError)


def _node_work_dir(tmp: Path, env: DistEnv) -> Path:
    """One directory per node that its processes share (downloads, checkpoints, the result): under
    torchrun, `FT_WORK_DIR/ft-node-{job}-{node}`, made by the node's first process."""
    if env.world_size == 1:
        return tmp
    shared = tmp.parent / f"ft-node-{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}-{env.node_rank}"
    shared.mkdir(parents=True, exist_ok=True)
    return shared


def _fail(events: EventSink, message: str, *, code: int, env: DistEnv | None = None) -> None:
    try:
        prefix = f"Rank {env.rank}: " if env is not None and env.world_size > 1 else ""
        events.message(prefix + message, level="error")
    finally:
        print(message, file=sys.stderr, flush=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
