"""The training recipe: load, (LoRA-)wrap, shard, loop with accumulation and a warmup schedule,
evaluate, checkpoint, resume, save. Every memory/speed switch is a hyperparameter.

Full-parameter training runs in a process group (distributed.py) of one process or many under torchrun:
FSDP2 shards weights, gradients and AdamW state, with bf16 compute over fp32 master weights, and
checkpoints are torch.distributed.checkpoint (DCP) shards that resume on another world size. LoRA of a
base that fits one device stays one plain process with PEFT checkpoints; under torchrun it is sharded too.
Every rank reads the whole (small) dataset and takes its slice of each global batch, so the global batch,
the loss (a mean over all ranks' trained tokens) and the step count do not depend on the world size."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .chat_format import IGNORE, Family
from .config import Hyperparameters, Method
from .data import Dataset, length_grouped_batches, load_jsonl, pad_batch
from .distributed import (
    DistEnv,
    all_sum,
    barrier,
    full_state_dict,
    init_distributed,
    mixed_precision,
    shard_model,
)
from .events import EventSink

LORA_TARGETS: dict[Family, list[str] | str] = {
    "tiny": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "chatml": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "chatglm3": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "glm4": "all-linear",
}


@dataclass
class TrainRequest:
    base_model: Path
    family: Family
    method: Method
    hyperparameters: Hyperparameters
    training_file: Path
    validation_file: Path | None
    # Local working directory: checkpoints/ step-N/ and the final result land here.
    output_dir: Path
    events: EventSink
    # Uploads a checkpoint's files (in the container): called on every rank with the files that rank
    # wrote, then on rank 0 alone with the manifest, checkpoint.json, once every rank's files are up.
    on_checkpoint: Callable[[int, Path, list[Path]], None] = lambda step, path, files: None
    # Test hook: raise after this many optimizer steps, as a killed container would stop.
    crash_after_step: int | None = None
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    # The process group; by default one is made for full-parameter training (see distributed.py).
    dist: DistEnv | None = None


@dataclass
class TrainResult:
    steps: int
    trained_tokens: int
    first_loss: float
    final_loss: float
    valid_loss: float | None
    valid_token_accuracy: float | None
    result_dir: Path
    resumed_from: int | None


class SimulatedCrash(RuntimeError):
    pass


def newest_checkpoint(checkpoints: Path) -> Path | None:
    """The highest step whose checkpoint.json exists: that file is written last, so it marks completeness."""
    complete = [p for p in checkpoints.glob("step-*") if (p / "checkpoint.json").is_file()]
    return max(complete, key=lambda p: int(p.name.split("-")[1]), default=None)


def run_training(req: TrainRequest) -> TrainResult:
    env = req.dist or init_distributed(want_group=req.method == "full", device=req.device)
    hp = req.hyperparameters
    random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    tokenizer, pad_id, train, valid = setup_data(req)
    model, params, dtype = setup_model(req, env)
    optimizer, scheduler, lengths, steps_per_epoch, total_steps = setup_optimizer(req, params, train)

    checkpoints = req.output_dir / "checkpoints"
    progress = Progress()
    latest = newest_checkpoint(checkpoints)
    if latest is not None:
        progress = resume(req, env, model, optimizer, scheduler, latest)
    events_main(req, env).message(
        f"Training {req.method} on {env.world_size} × {env.device.split(':')[0]} ({dtype}): "
        f"{sum(p.numel() for p in params) * (env.world_size if env.grouped else 1):,} trainable parameters, "
        f"{total_steps} steps of {hp.batch_size}×{hp.gradient_accumulation_steps} examples",
        data={"world_size": env.world_size, "nodes": env.nodes},
    )

    metrics_log = req.output_dir / "metrics.jsonl"
    req.output_dir.mkdir(parents=True, exist_ok=True)
    if progress.resumed_from is None and env.is_main:
        metrics_log.unlink(missing_ok=True)
    step = progress.step
    last_report, started, tokens_since = 0.0, time.time(), 0
    final_loss = float("nan")
    valid_loss = valid_acc = None
    model.train()
    for epoch in range(hp.n_epochs):
        batches = length_grouped_batches(lengths, hp.batch_size, hp.seed + epoch)
        groups = [
            batches[i : i + hp.gradient_accumulation_steps]
            for i in range(0, len(batches), hp.gradient_accumulation_steps)
        ]
        for group_index, group in enumerate(groups):
            if epoch * steps_per_epoch + group_index < step:
                continue  # done before the checkpoint we resumed from
            loss_value, tokens = _accumulated_step(model, group, train, pad_id, env)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress.trained_tokens += tokens
            tokens_since += tokens
            final_loss = loss_value
            progress.first_loss = loss_value if progress.first_loss is None else progress.first_loss
            is_last = step == total_steps
            evaluate_now = valid is not None and (step % hp.eval_every_steps == 0 or is_last)
            if evaluate_now and valid is not None:
                valid_loss, valid_acc = evaluate(model, valid, hp.batch_size, pad_id, env)
            now = time.time()
            if is_last or step == 1 or evaluate_now or now - last_report >= hp.metrics_interval_seconds:
                elapsed = max(now - started, 1e-9)
                record: dict[str, Any] = {
                    "step": step,
                    "total_steps": total_steps,
                    "epoch": epoch + 1,
                    "train_loss": loss_value,
                    "learning_rate": scheduler.get_last_lr()[0],
                    "tokens_per_second": tokens_since / elapsed,
                    "eta_seconds": (total_steps - step)
                    * elapsed
                    / max(step - (progress.resumed_from or 0), 1),
                    "trained_tokens": progress.trained_tokens,
                }
                if evaluate_now:
                    record["valid_loss"], record["valid_token_accuracy"] = valid_loss, valid_acc
                if env.is_main:
                    req.events.metrics(record)
                    with metrics_log.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                last_report = now
            if step % hp.checkpoint_every_steps == 0 and not is_last:
                saved = Progress(step, progress.trained_tokens, progress.first_loss, final_loss)
                save_checkpoint(req, env, model, optimizer, scheduler, checkpoints, saved, metrics_log)
                events_main(req, env).message(f"Checkpoint saved at step {step}")
            if req.crash_after_step is not None and step >= req.crash_after_step:
                raise SimulatedCrash(f"simulated crash after step {step}")

    result_dir = save_result(req, env, model, tokenizer)
    return TrainResult(
        step,
        progress.trained_tokens,
        progress.first_loss or final_loss,
        final_loss,
        valid_loss,
        valid_acc,
        result_dir,
        progress.resumed_from,
    )


@dataclass
class Progress:
    """Where a run stands: what a checkpoint's manifest records and a resumed run starts from."""

    step: int = 0
    trained_tokens: int = 0
    first_loss: float | None = None
    loss: float | None = None
    resumed_from: int | None = None


class _Quiet:
    """Events of the ranks other than 0: only errors get through (each rank reports its own failure)."""

    def __init__(self, events: EventSink) -> None:
        self._events = events

    def message(self, text: str, level: Any = "info", data: dict[str, Any] | None = None) -> None:
        if level == "error":
            self._events.message(text, level, data)

    def metrics(self, data: dict[str, Any]) -> None:
        pass


def events_main(req: TrainRequest, env: DistEnv) -> EventSink:
    return req.events if env.is_main else _Quiet(req.events)


def setup_data(req: TrainRequest) -> tuple[Any, int, Dataset, Dataset | None]:
    """The tokenizer and the encoded training (and validation) examples; every rank reads all of them."""
    from transformers import AutoTokenizer

    hp = req.hyperparameters
    tokenizer = AutoTokenizer.from_pretrained(req.base_model, trust_remote_code=req.family in ("chatglm3",))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    max_len = min(
        hp.max_seq_length, getattr(tokenizer, "model_max_length", hp.max_seq_length) or hp.max_seq_length
    )
    train = load_jsonl(req.training_file, tokenizer, req.family, max_len)
    valid = load_jsonl(req.validation_file, tokenizer, req.family, max_len) if req.validation_file else None
    req.events.message(
        f"Loaded {len(train.examples)} training examples ({train.tokens} tokens, {train.truncated} truncated, "
        f"{train.skipped} skipped)" + (f" and {len(valid.examples)} validation examples" if valid else "")
    )
    return tokenizer, pad_id, train, valid


def setup_model(req: TrainRequest, env: DistEnv) -> tuple[Any, list[torch.nn.Parameter], torch.dtype]:
    """The model, LoRA-wrapped for `lora`, with activation checkpointing when asked, and sharded with
    FSDP2 in a process group. Returns it with its trainable parameters and the compute dtype.

    In a group the weights load in fp32: they are the master copy FSDP2 shards and AdamW updates, and the
    mixed-precision policy gathers them in bf16 for compute. A single LoRA process keeps the frozen base
    in bf16 on a GPU (PEFT keeps the adapters in fp32)."""
    from transformers import AutoModelForCausalLM

    hp = req.hyperparameters
    on_gpu = env.device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    load_dtype = torch.float32 if env.grouped or not bf16 else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(
        req.base_model, dtype=load_dtype, trust_remote_code=req.family in ("chatglm3",)
    )
    # Activation checkpointing on every GPU run: the resource planner sizes GPUs with it (it is what lets
    # long sequences fit); on CPU (tests, the local platform) as asked.
    checkpointing = hp.gradient_checkpointing or on_gpu
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if req.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=hp.lora_r,
            lora_alpha=hp.lora_alpha,
            lora_dropout=hp.lora_dropout,
            target_modules=LORA_TARGETS[req.family],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)  # type: ignore[assignment]
        if checkpointing:
            model.enable_input_require_grads()
    model.to(env.device)  # type: ignore[arg-type]
    compute = load_dtype
    if env.grouped:
        shard_model(model, env)
        compute = mixed_precision(env).param_dtype or torch.float32
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, compute


def setup_optimizer(
    req: TrainRequest, params: list[torch.nn.Parameter], train: Dataset
) -> tuple[Any, Any, list[int], int, int]:
    """AdamW (over the sharded fp32 parameters in a group) and the warmup schedule; the step counts."""
    from transformers import get_scheduler

    hp = req.hyperparameters
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate_for(req.method), weight_decay=hp.weight_decay)
    lengths = [len(e.input_ids) for e in train.examples]
    batches_per_epoch = math.ceil(len(lengths) / hp.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / hp.gradient_accumulation_steps)
    total_steps = steps_per_epoch * hp.n_epochs
    scheduler = get_scheduler(
        hp.lr_scheduler,
        optimizer,
        num_warmup_steps=int(total_steps * hp.warmup_ratio),
        num_training_steps=total_steps,
    )
    return optimizer, scheduler, lengths, steps_per_epoch, total_steps


def _my_part(batch: list[int], env: DistEnv) -> tuple[list[int], float]:
    """This rank's examples of a global batch, and the weight of their loss (0 for a stand-in: a rank
    with no example of a short last batch still runs forward and backward, as FSDP2's collectives need)."""
    if not env.grouped or env.world_size == 1:
        return batch, 1.0
    mine = batch[env.rank :: env.world_size]
    return (mine, 1.0) if mine else (batch[:1], 0.0)


def _accumulated_step(
    model: Any, group: list[list[int]], data: Dataset, pad_id: int, env: DistEnv
) -> tuple[float, int]:
    """Backward over the batches of one optimizer step; the loss is the mean over all trained tokens of
    the group on all ranks, so accumulation and sharding give the same gradient as one large batch.
    FSDP2 averages gradients over ranks, hence the world-size factor. Returns the global mean loss and the
    tokens of the group (each counted once)."""
    total_trained = sum(
        sum(1 for label in data.examples[i].labels[1:] if label != IGNORE) for b in group for i in b
    )
    scale = env.world_size if env.grouped else 1
    loss_sum, tokens = 0.0, 0
    for batch in group:
        mine, weight = _my_part(batch, env)
        ids, labels, mask = (
            torch.tensor(x, device=env.device) for x in pad_batch([data.examples[i] for i in mine], pad_id)
        )
        logits = model(input_ids=ids, attention_mask=mask).logits
        shifted = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)).float(),
            labels[:, 1:].reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        (shifted * (weight * scale / max(total_trained, 1))).backward()
        loss_sum += shifted.item() * weight
        tokens += int(mask.sum().item()) if weight else 0
    loss_sum, total_tokens = all_sum(env, [loss_sum, float(tokens)])
    return loss_sum / max(total_trained, 1), int(total_tokens)


@torch.no_grad()
def evaluate(model: Any, data: Dataset, batch_size: int, pad_id: int, env: DistEnv) -> tuple[float, float]:
    """Mean loss and token accuracy over the trained (assistant) tokens of a dataset, over all ranks."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    order = sorted(range(len(data.examples)), key=lambda i: len(data.examples[i].input_ids))
    for start in range(0, len(order), batch_size):
        mine, weight = _my_part(order[start : start + batch_size], env)
        batch = [data.examples[i] for i in mine]
        ids, labels, mask = (torch.tensor(x, device=env.device) for x in pad_batch(batch, pad_id))
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        keep = target != IGNORE
        loss_sum += (
            weight
            * torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
            ).item()
        )
        correct += int(weight) * int(((logits.argmax(-1) == target) & keep).sum().item())
        count += int(weight) * int(keep.sum().item())
    model.train()
    loss_sum, correct_f, count_f = all_sum(env, [loss_sum, float(correct), float(count)])
    return loss_sum / max(count_f, 1), correct_f / max(count_f, 1)


def save_checkpoint(
    req: TrainRequest,
    env: DistEnv,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    root: Path,
    progress: Progress,
    metrics_log: Path,
) -> Path:
    """A checkpoint at `progress.step`: in a group DCP shards (each rank writes its own) under `dcp/`,
    else the PEFT adapter or model; the optimizer, the schedule and the RNG; the metrics so far; and
    `checkpoint.json` last, once every rank's files are uploaded: a checkpoint without it is incomplete
    and never resumed from."""
    path = root / f"step-{progress.step}"
    if env.is_local_main:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    barrier(env)
    mine: list[Path]
    if env.grouped:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optimizer_state}, checkpoint_id=str(path / "dcp"))
        mine = sorted((path / "dcp").glob(f"__{env.rank}_*.distcp"))
    else:
        model.save_pretrained(
            path / ("adapter" if req.method == "lora" else "model"), safe_serialization=True
        )
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
        mine = []
    torch.save(_rng_state(), path / f"rng-{env.rank}.pt")
    mine.append(path / f"rng-{env.rank}.pt")
    if env.is_main:
        torch.save(scheduler.state_dict(), path / "scheduler.pt")
        if metrics_log.is_file():
            shutil.copy(metrics_log, path / "metrics.jsonl")
        # Rank 0 also uploads DCP's .metadata and, outside a group, the weights and optimizer; never
        # another rank's files, which that rank may still be writing (on the same node's disk).
        owned = {p.resolve() for p in mine}
        mine += [
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.resolve() not in owned and not _another_ranks_file(p.name, env.rank)
        ]
    req.on_checkpoint(progress.step, path, mine)
    barrier(env)
    if env.is_main:
        manifest = {
            "step": progress.step,
            "trained_tokens": progress.trained_tokens,
            "first_loss": progress.first_loss,
            "metrics": {"train_loss": progress.loss},
            "world_size": env.world_size,
            "format": "dcp" if env.grouped else "peft" if req.method == "lora" else "safetensors",
            "created_at": int(time.time()),
        }
        (path / "checkpoint.json").write_text(json.dumps(manifest))
        req.on_checkpoint(progress.step, path, [path / "checkpoint.json"])
        _prune_local_checkpoints(root, keep=path)
    barrier(env)
    return path


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


def resume(
    req: TrainRequest, env: DistEnv, model: Any, optimizer: Any, scheduler: Any, latest: Path
) -> Progress:
    """Loads a complete checkpoint: DCP shards reshard to this world size (saved by 2 processes, resumed
    by 1, or the other way round)."""
    state = json.loads((latest / "checkpoint.json").read_text())
    if env.grouped:
        if not (latest / "dcp").is_dir():
            raise ValueError(
                f"checkpoint {latest.name} is not a sharded (DCP) checkpoint; it cannot resume here"
            )
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optimizer_state = get_state_dict(model, optimizer)
        # DCP loads in place, into these (sharded) tensors, resharding from the saved world size.
        loaded: dict[str, Any] = {"model": model_state, "optim": optimizer_state}
        dcp.load(loaded, checkpoint_id=str(latest / "dcp"))
        set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"])
    else:
        _load_weights(model, latest, req.method)
        optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=False))
    # This rank's RNG, or rank 0's when the run had fewer ranks before (`rng.pt`: an older checkpoint).
    candidates = [latest / f"rng-{env.rank}.pt", latest / "rng-0.pt", latest / "rng.pt"]
    rng = torch.load(next(p for p in candidates if p.is_file()), weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if env.device.startswith("cuda") and rng.get("cuda") is not None:
        torch.cuda.set_rng_state_all(rng["cuda"])
    step = int(state["step"])
    if env.is_main:
        _restore_metrics(latest / "metrics.jsonl", req.output_dir / "metrics.jsonl", step)
    events_main(req, env).message(f"Resumed from checkpoint at step {step}")
    return Progress(step, int(state["trained_tokens"]), state.get("first_loss"), None, resumed_from=step)


def save_result(req: TrainRequest, env: DistEnv, model: Any, tokenizer: Any) -> Path:
    """The adapter (`adapter/`) or the consolidated full model (`model/`: safetensors in the base
    model's dtype, config and tokenizer: what vLLM loads), written by rank 0."""
    result_dir = req.output_dir / ("adapter" if req.method == "lora" else "model")
    state = full_state_dict(model, env) if env.grouped else None
    if env.is_main:
        if result_dir.exists():
            shutil.rmtree(result_dir)
        if state is not None:
            saved_dtype = _saved_dtype(model)
            if req.method == "full" and saved_dtype is not None:
                state = {k: v.to(saved_dtype) if v.is_floating_point() else v for k, v in state.items()}
            model.save_pretrained(result_dir, state_dict=state, safe_serialization=True)
        else:
            model.save_pretrained(result_dir, safe_serialization=True)
        tokenizer.save_pretrained(result_dir)
    barrier(env)
    return result_dir


def _saved_dtype(model: Any) -> torch.dtype | None:
    """The dtype the base model's weights were published in (config `torch_dtype`), for the export."""
    config = getattr(model, "config", None)
    value = getattr(config, "torch_dtype", None) or getattr(config, "dtype", None)
    if isinstance(value, torch.dtype):
        return value
    return getattr(torch, value) if isinstance(value, str) and hasattr(torch, value) else None


def _load_weights(model: Any, checkpoint: Path, method: Method) -> None:
    from safetensors.torch import load_file

    if method == "lora":
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(
            model, load_file(str(checkpoint / "adapter" / "adapter_model.safetensors"))
        )
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise ValueError(
                f"checkpoint {checkpoint.name} has adapter weights this model lacks: {unexpected[:5]}"
            )
    else:
        state = {}
        for file in sorted((checkpoint / "model").glob("*.safetensors")):
            state.update(load_file(str(file)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Tied weights (the LM head shares the embeddings) are absent from the file by design.
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise ValueError(
                f"checkpoint {checkpoint.name} does not match the model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )


def _prune_local_checkpoints(root: Path, keep: Path) -> None:
    """Only the newest checkpoint stays on local disk (it is in S3 already): a full-parameter
    checkpoint of a large model is the model plus two optimizer moments, and scratch space is finite."""
    for path in root.glob("step-*"):
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)


def _restore_metrics(saved: Path, log: Path, step: int) -> None:
    """The metrics written before the checkpoint, so that metrics.jsonl covers the whole run."""
    lines = saved.read_text().splitlines() if saved.is_file() else []
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(line + "\n" for line in lines if json.loads(line)["step"] <= step))
