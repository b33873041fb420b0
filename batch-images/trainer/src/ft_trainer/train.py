"""The training recipe: load, (LoRA-)wrap, loop with accumulation and a warmup schedule, evaluate,
checkpoint, resume, save. One readable function; every memory/speed switch is a hyperparameter."""

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
    # Called after a checkpoint is complete on disk (uploads it in the container).
    on_checkpoint: Callable[[int, Path], None] = lambda step, path: None
    # Test hook: raise after this many optimizer steps, as a killed container would stop.
    crash_after_step: int | None = None
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")


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
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    hp = req.hyperparameters
    random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    on_gpu = req.device.startswith("cuda")
    dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32

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

    model = AutoModelForCausalLM.from_pretrained(
        req.base_model, dtype=dtype, trust_remote_code=req.family in ("chatglm3",)
    )
    if hp.gradient_checkpointing:
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
        if hp.gradient_checkpointing:
            model.enable_input_require_grads()
    model.to(req.device)  # type: ignore[arg-type]
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
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

    checkpoints = req.output_dir / "checkpoints"
    step, resumed_from, trained_tokens = 0, None, 0
    first_loss: float | None = None
    latest = newest_checkpoint(checkpoints)
    if latest is not None:
        state = json.loads((latest / "checkpoint.json").read_text())
        _load_weights(model, latest, req.method)
        optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=False))
        scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=False))
        rng = torch.load(latest / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if on_gpu and rng.get("cuda") is not None:
            torch.cuda.set_rng_state_all(rng["cuda"])
        step, trained_tokens, first_loss = state["step"], state["trained_tokens"], state.get("first_loss")
        resumed_from = step
        _restore_metrics(latest / "metrics.jsonl", req.output_dir / "metrics.jsonl", step)
        req.events.message(f"Resumed from checkpoint at step {step}")
    req.events.message(
        f"Training {req.method} on {req.device} ({dtype}): {trainable:,} trainable parameters, "
        f"{total_steps} steps of {hp.batch_size}×{hp.gradient_accumulation_steps} examples"
    )

    metrics_log = req.output_dir / "metrics.jsonl"
    req.output_dir.mkdir(parents=True, exist_ok=True)
    if resumed_from is None:
        metrics_log.unlink(missing_ok=True)
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
            loss_value, tokens = _accumulated_step(model, group, train, pad_id, req.device)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            trained_tokens += tokens
            tokens_since += tokens
            final_loss = loss_value
            first_loss = loss_value if first_loss is None else first_loss
            is_last = step == total_steps
            evaluate_now = valid is not None and (step % hp.eval_every_steps == 0 or is_last)
            if evaluate_now and valid is not None:
                valid_loss, valid_acc = evaluate(model, valid, hp.batch_size, pad_id, req.device)
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
                    "eta_seconds": (total_steps - step) * elapsed / max(step - (resumed_from or 0), 1),
                    "trained_tokens": trained_tokens,
                }
                if evaluate_now:
                    record["valid_loss"], record["valid_token_accuracy"] = valid_loss, valid_acc
                req.events.metrics(record)
                with metrics_log.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                last_report = now
            if step % hp.checkpoint_every_steps == 0 and not is_last:
                path = _save_checkpoint(
                    model,
                    optimizer,
                    scheduler,
                    checkpoints,
                    step,
                    trained_tokens,
                    first_loss,
                    final_loss,
                    req.method,
                    metrics_log,
                )
                req.on_checkpoint(step, path)
                _prune_local_checkpoints(checkpoints, keep=path)
                req.events.message(f"Checkpoint saved at step {step}")
            if req.crash_after_step is not None and step >= req.crash_after_step:
                raise SimulatedCrash(f"simulated crash after step {step}")

    result_dir = req.output_dir / ("adapter" if req.method == "lora" else "model")
    if result_dir.exists():
        shutil.rmtree(result_dir)
    model.save_pretrained(result_dir, safe_serialization=True)
    tokenizer.save_pretrained(result_dir)
    return TrainResult(
        step,
        trained_tokens,
        first_loss or final_loss,
        final_loss,
        valid_loss,
        valid_acc,
        result_dir,
        resumed_from,
    )


def _accumulated_step(
    model: Any, group: list[list[int]], data: Dataset, pad_id: int, device: str
) -> tuple[float, int]:
    """Backward over the batches of one optimizer step; the loss is the mean over all trained tokens of
    the group, so accumulation gives the same gradient as one large batch."""
    total_trained = sum(
        sum(1 for label in data.examples[i].labels[1:] if label != IGNORE) for b in group for i in b
    )
    loss_sum, tokens = 0.0, 0
    for batch in group:
        ids, labels, mask = (
            torch.tensor(x, device=device) for x in pad_batch([data.examples[i] for i in batch], pad_id)
        )
        logits = model(input_ids=ids, attention_mask=mask).logits
        shifted = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)).float(),
            labels[:, 1:].reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        (shifted / max(total_trained, 1)).backward()
        loss_sum += shifted.item()
        tokens += int(mask.sum().item())
    return loss_sum / max(total_trained, 1), tokens


@torch.no_grad()
def evaluate(model: Any, data: Dataset, batch_size: int, pad_id: int, device: str) -> tuple[float, float]:
    """Mean loss and token accuracy over the trained (assistant) tokens of a dataset."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    order = sorted(range(len(data.examples)), key=lambda i: len(data.examples[i].input_ids))
    for start in range(0, len(order), batch_size):
        batch = [data.examples[i] for i in order[start : start + batch_size]]
        ids, labels, mask = (torch.tensor(x, device=device) for x in pad_batch(batch, pad_id))
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        keep = target != IGNORE
        loss_sum += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
        ).item()
        correct += int(((logits.argmax(-1) == target) & keep).sum().item())
        count += int(keep.sum().item())
    model.train()
    return loss_sum / max(count, 1), correct / max(count, 1)


def _save_checkpoint(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    root: Path,
    step: int,
    trained_tokens: int,
    first_loss: float | None,
    loss: float,
    method: Method,
    metrics_log: Path,
) -> Path:
    path = root / f"step-{step}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    model.save_pretrained(path / ("adapter" if method == "lora" else "model"), safe_serialization=True)
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(scheduler.state_dict(), path / "scheduler.pt")
    torch.save(
        {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        path / "rng.pt",
    )
    if metrics_log.is_file():
        shutil.copy(metrics_log, path / "metrics.jsonl")
    manifest = {
        "step": step,
        "trained_tokens": trained_tokens,
        "first_loss": first_loss,
        "metrics": {"train_loss": loss},
        "created_at": int(time.time()),
    }
    # Written last: a checkpoint without it is incomplete and never resumed from.
    (path / "checkpoint.json").write_text(json.dumps(manifest))
    return path


def _load_weights(model: Any, checkpoint: Path, method: Method) -> None:
    from safetensors.torch import load_file

    if method == "lora":
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter" / "adapter_model.safetensors")))
    else:
        state = {}
        for file in sorted((checkpoint / "model").glob("*.safetensors")):
            state.update(load_file(str(file)))
        model.load_state_dict(state, strict=False)


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
