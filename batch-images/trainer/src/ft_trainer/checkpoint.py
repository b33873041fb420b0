"""Checkpoints of a training run: save (DCP shards, PEFT adapter or safetensors, manifest last), find the
newest complete one, load it with every weight checked key by key, restore RNG state and the metrics log."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from .config import Method
from .distributed import (
    DistEnv,
    barrier,
)
from ft_contract import load_platform

from .evaluation import Best
from .records import CheckpointFiles, Progress, TrainingRun


# --- checkpoints: save --------------------------------------------------------------------------------


# contract/platform.json: the layout of a job's output (checkpoints/step-N/, checkpoint.json, ...), which
# the Lambdas read too (the checkpoints API, job-status).
CONTRACT = load_platform()


def checkpoint_step(path: Path) -> int | None:
    """The step of a checkpoint directory (`step-12` → 12), None for anything else."""
    return CONTRACT.checkpoint_step(path.name + "/") if path.is_dir() else None


def newest_checkpoint(checkpoints: Path) -> Path | None:
    """The highest step whose manifest exists: that file is written last, so it marks completeness."""
    complete = {
        step: path
        for path in (checkpoints.iterdir() if checkpoints.is_dir() else ())
        if (step := checkpoint_step(path)) is not None and (path / CONTRACT.manifest_name).is_file()
    }
    return complete[max(complete)] if complete else None


def save_checkpoint(run: TrainingRun, progress: Progress) -> Path:
    """A checkpoint at `progress.step`: in a group DCP shards (each rank writes its own) under `dcp/`,
    else the PEFT adapter or model; the optimizer, the schedule and the RNG; the metrics so far; and
    `checkpoint.json` last, once every rank's files are uploaded: a checkpoint without it is incomplete
    and never resumed from."""
    env, step = run.env, progress.step
    path = run.req.output_dir / CONTRACT.checkpoint_prefix(step)
    if env.is_local_main:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    barrier(env)
    run.req.on_checkpoint(CheckpointFiles(step, path, tuple(_write_checkpoint_files(run, path))))
    barrier(env)
    if env.is_main:
        manifest = path / CONTRACT.manifest_name
        manifest.write_text(json.dumps(_manifest(run, progress)))
        run.req.on_checkpoint(CheckpointFiles(step, path, (manifest,)))
        # The best evaluation's checkpoint stays too: the delivered weights may be restored from it.
        best = progress.best.step
        keep = {path} | (
            {run.req.output_dir / CONTRACT.checkpoint_prefix(best)} if best is not None else set()
        )
        _prune_local_checkpoints(run.checkpoints, keep=keep)
    barrier(env)
    return path


def _write_checkpoint_files(run: TrainingRun, path: Path) -> list[Path]:
    """Writes this rank's part of a checkpoint under `path`; returns the files this rank uploads."""
    env, model, optimizer = run.env, run.model.module, run.optim.optimizer
    mine: list[Path]
    if env.grouped:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optimizer_state}, checkpoint_id=str(path / "dcp"))
        mine = sorted((path / "dcp").glob(f"__{env.rank}_*.distcp"))
    else:
        model.save_pretrained(path / _weights_dir(run.req.method), safe_serialization=True)
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
        mine = []
    torch.save(_rng_state(), path / f"rng-{env.rank}.pt")
    mine.append(path / f"rng-{env.rank}.pt")
    if env.is_main:
        torch.save(run.optim.scheduler.state_dict(), path / "scheduler.pt")
        if run.metrics_log.is_file():
            shutil.copy(run.metrics_log, path / CONTRACT.metrics_name)
        # Rank 0 also uploads DCP's .metadata and, outside a group, the weights and optimizer; never
        # another rank's files, which that rank may still be writing (on the same node's disk).
        owned = {p.resolve() for p in mine}
        mine += [
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.resolve() not in owned and not _another_ranks_file(p.name, env.rank)
        ]
    return mine


def _manifest(run: TrainingRun, progress: Progress) -> dict[str, Any]:
    return {
        "step": progress.step,
        "trained_tokens": progress.trained_tokens,
        "first_loss": progress.first_loss,
        # The step's metrics, and its evaluation's when it had one (what the checkpoints API shows).
        "metrics": {
            "train_loss": progress.loss,
            **progress.step_metrics,
            **(progress.valid if progress.valid_step == progress.step else {}),
        },
        # The trainer's own: the best evaluation so far, so that a resumed run keeps counting from it.
        "evaluation": progress.best.to_json(),
        "world_size": run.env.world_size,
        "format": run.checkpoint_format,
        "created_at": int(time.time()),
    }


def _weights_dir(method: Method) -> str:
    """`adapter` (LoRA) or `model` (full): the result's directory, a checkpoint's weights too."""
    return CONTRACT.result_dir(method).rstrip("/")


def _another_ranks_file(name: str, rank: int) -> bool:
    """A DCP shard `__{r}_{i}.distcp` or an RNG state `rng-{r}.pt` of a rank other than `rank`."""
    if name.endswith(".distcp") and name.startswith("__"):
        return not name.startswith(f"__{rank}_")
    if name.startswith("rng-") and name.endswith(".pt"):
        return name != f"rng-{rank}.pt"
    return False


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _prune_local_checkpoints(root: Path, keep: set[Path]) -> None:
    """Only the newest checkpoint (and the best one) stays on local disk (they are in S3 already): a
    full-parameter checkpoint of a large model is the model plus two optimizer moments, and scratch
    space is finite."""
    for path in root.iterdir():
        if path not in keep and checkpoint_step(path) is not None:
            shutil.rmtree(path, ignore_errors=True)


# --- checkpoints: resume ------------------------------------------------------------------------------


def load_checkpoint(run: TrainingRun, latest: Path) -> Progress:
    """Loads a complete checkpoint: DCP shards reshard to this world size (saved by 2 processes, resumed
    by 1, or the other way round). Its weights must be this model's, key for key (`check_weight_keys`)."""
    env, model, optimizer = run.env, run.model.module, run.optim.optimizer
    state = json.loads((latest / CONTRACT.manifest_name).read_text())
    if env.grouped:
        _load_sharded(model, optimizer, latest)
    else:
        _load_weights(model, latest, run.req.method)
        optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=False))
    run.optim.scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=False))
    _restore_rng(latest, env)
    step = int(state["step"])
    if env.is_main:
        _restore_metrics(latest / CONTRACT.metrics_name, run.metrics_log, step)
    run.main_events.message(f"Resumed from checkpoint at step {step}")
    return Progress(
        step=step,
        trained_tokens=int(state["trained_tokens"]),
        first_loss=state.get("first_loss"),
        resumed_from=step,
        best=Best.from_json(state.get("evaluation")),
    )


def restore_weights(run: TrainingRun, step: int) -> None:
    """The model's weights as the checkpoint of `step` holds them (the best evaluation's, to deliver);
    the run does not train on after this."""
    path = run.req.output_dir / CONTRACT.checkpoint_prefix(step)
    if not (path / CONTRACT.manifest_name).is_file():
        raise ValueError(f"the checkpoint of step {step} to deliver is not on this node")
    if run.env.grouped:
        _load_sharded(run.model.module, run.optim.optimizer, path)
    else:
        _load_weights(run.model.module, path, run.req.method)


def _load_sharded(model: Any, optimizer: Any, latest: Path) -> None:
    if not (latest / "dcp").is_dir():
        raise ValueError(f"checkpoint {latest.name} is not a sharded (DCP) checkpoint; it cannot resume here")
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    # DCP's keys are the flattened state dict's: "model.<parameter>" for the weights.
    saved = dcp.FileSystemReader(str(latest / "dcp")).read_metadata().state_dict_metadata
    check_weight_keys(
        model,
        expected=model_state.keys(),
        saved=(key.removeprefix("model.") for key in saved if key.startswith("model.")),
        checkpoint=latest,
    )
    # DCP loads in place, into these (sharded) tensors, resharding from the saved world size.
    loaded: dict[str, Any] = {"model": model_state, "optim": optimizer_state}
    dcp.load(loaded, checkpoint_id=str(latest / "dcp"))
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"])


def _load_weights(model: Any, checkpoint: Path, method: Method) -> None:
    """The PEFT adapter or the model's safetensors of a checkpoint written outside a process group."""
    from safetensors.torch import load_file

    files = sorted((checkpoint / _weights_dir(method)).glob("*.safetensors"))
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    if method == "lora":
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        # The adapter's keys as PEFT saves them (without the adapter's name); the base weights are frozen
        # and not in the checkpoint.
        check_weight_keys(
            model, expected=get_peft_model_state_dict(model).keys(), saved=state, checkpoint=checkpoint
        )
        set_peft_model_state_dict(model, state)
    else:
        check_weight_keys(
            model,
            expected=model.state_dict().keys(),
            saved=state,
            checkpoint=checkpoint,
            tied_saved_once=True,
        )
        # Not strict: the tied weights save_pretrained left out (checked above) load with their twins.
        model.load_state_dict(state, strict=False)


class CheckpointMismatch(ValueError):
    """A checkpoint whose weights are not this model's: a resume from it would train something else."""


def check_weight_keys(
    model: Any,
    *,
    expected: Iterable[str],
    saved: Iterable[str],
    checkpoint: Path,
    tied_saved_once: bool = False,
) -> None:
    """Refuses a checkpoint that lacks a weight the model expects or holds one it does not, naming them.

    Legitimately absent, with `tied_saved_once` (a writer that saves a parameter registered under several
    names once: `save_pretrained`, which leaves out the LM head that shares the embeddings): a tied
    parameter whose twin is saved; it loads with the twin. DCP and PEFT write every key they read back.
    Legitimately extra: a buffer the model registers as non-persistent (rotary `inv_freq`, which older
    transformers versions wrote): the model computes it, and loading skips it."""
    missing, unexpected = unexplained_keys(
        model, expected=expected, saved=saved, tied_saved_once=tied_saved_once
    )
    if missing or unexpected:
        found = [
            f"missing {_some(missing)}" if missing else "",
            f"unexpected {_some(unexpected)}" if unexpected else "",
        ]
        raise CheckpointMismatch(
            f"checkpoint {checkpoint.name} does not match the model: {'; '.join(p for p in found if p)}"
        )


def unexplained_keys(
    model: Any, *, expected: Iterable[str], saved: Iterable[str], tied_saved_once: bool = False
) -> tuple[list[str], list[str]]:
    """The missing and the unexpected keys of a checkpoint, less the legitimate ones (check_weight_keys)."""
    expected_keys, saved_keys = set(expected), set(saved)
    tied = _tied_parameters(model) if tied_saved_once else {}
    missing = [k for k in expected_keys - saved_keys if not tied.get(k, set()) & saved_keys]
    unexpected = saved_keys - expected_keys - _non_persistent_buffers(model)
    return sorted(missing), sorted(unexpected)


def _tied_parameters(model: Any) -> dict[str, set[str]]:
    """Each name of a parameter registered under several names, with its other names."""
    names: dict[int, set[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), set()).add(name)
    return {name: group - {name} for group in names.values() if len(group) > 1 for name in group}


def _non_persistent_buffers(model: Any) -> set[str]:
    return {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        for name in module._non_persistent_buffers_set
    }


def _some(keys: list[str], shown: int = 10) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _restore_rng(latest: Path, env: DistEnv) -> None:
    """This rank's RNG, or rank 0's when the run had fewer ranks before (`rng.pt`: an older checkpoint)."""
    candidates = [latest / f"rng-{env.rank}.pt", latest / "rng-0.pt", latest / "rng.pt"]
    rng = torch.load(next(p for p in candidates if p.is_file()), weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if env.device.startswith("cuda") and rng.get("cuda") is not None:
        torch.cuda.set_rng_state_all(rng["cuda"])


def _restore_metrics(saved: Path, log: Path, step: int) -> None:
    """The metrics written before the checkpoint, so that metrics.jsonl covers the whole run."""
    lines = saved.read_text().splitlines() if saved.is_file() else []
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(line + "\n" for line in lines if json.loads(line)["step"] <= step))
