"""The training recipe, in named stages: set up (data, model, optimizer), resume, train, save.

    run_training(request)
      setup(request)           setup_data, setup_model (LoRA-wrap, FSDP2), setup_optimizer → TrainingRun
      resume(run)              the newest complete checkpoint, weights checked key by key → Progress
      train(run, progress)     train_step per optimizer step; evaluate, report_metrics, save_checkpoint
      save(run, progress)      save_result (the adapter or the consolidated model) → TrainResult

Every memory/speed switch is a hyperparameter. Full-parameter training runs in a process group
(distributed.py) of one process or many under torchrun: FSDP2 shards weights, gradients and AdamW state,
with bf16 compute over fp32 master weights, and checkpoints are torch.distributed.checkpoint (DCP) shards
that resume on another world size. LoRA of a base that fits one device stays one plain process with PEFT
checkpoints; under torchrun it is sharded too. Every rank reads the whole (small) dataset and takes its
slice of each global batch, so the global batch, the loss (a mean over all ranks' trained tokens) and the
step count do not depend on the world size."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import CATALOG
from .chat_format import IGNORE
from .data import Dataset, length_grouped_batches, load_jsonl, pad_batch
from .preferences import PreferenceDataset, load_preferences
from .distributed import (
    my_part,
    DistEnv,
    all_sum,
    barrier,
    full_state_dict,
    init_distributed,
    mixed_precision,
    shard_model,
)
from . import stop
from .checkpoint import (
    CONTRACT,
    _weights_dir,
    checkpoint_step,
    load_checkpoint,
    newest_checkpoint,
    restore_weights,
    save_checkpoint,
)
from .evaluation import eval_interval, periodic_sample, prefixed, results_csv, split_validation
from .records import (
    Data,
    Model,
    Optimization,
    Progress,
    TrainingRun,
    TrainRequest,
    TrainResult,
)


# --- the recipe -----------------------------------------------------------------------------------------


def run_training(req: TrainRequest) -> TrainResult:
    run = setup(req)
    progress = resume(run)
    train(run, progress)
    return save(run, progress)


def setup(req: TrainRequest) -> TrainingRun:
    """The process group (full-parameter training always has one), the seeds, then data, model and
    optimizer."""
    env = req.dist or init_distributed(want_group=req.method == "full", device=req.device)
    random.seed(req.hyperparameters.seed)
    torch.manual_seed(req.hyperparameters.seed)
    data = setup_data(req)
    model = setup_model(req, env)
    if req.objective == "dpo":
        from .dpo import with_reference

        # DPO's reference log-probabilities, from the weights as set up (before any checkpoint loads).
        data = with_reference(data, model, env, req.hyperparameters.batch_size)
    optim = setup_optimizer(req, model.params, data.train)
    return TrainingRun(req=req, env=env, data=data, model=model, optim=optim)


def resume(run: TrainingRun) -> Progress:
    """The newest complete checkpoint restored (weights, optimizer, schedule, RNG, metrics so far), or a
    fresh start."""
    latest = newest_checkpoint(run.checkpoints)
    return load_checkpoint(run, latest) if latest is not None else Progress()


def train(run: TrainingRun, progress: Progress) -> None:
    """The loop: one optimizer step per group of `gradient_accumulation_steps` length-grouped batches,
    skipping the steps done before the checkpoint resumed from; after each step evaluation, metrics and
    checkpoints when due, then the `on_step` observer. A stop requested (SIGTERM, stop.py) before a step
    writes a checkpoint of the steps so far and raises TrainingStopped instead of taking it."""
    hp = run.req.hyperparameters
    _announce(run)
    _start_metrics_log(run, progress)
    meter = Meter(
        started=time.time(),
        tokens_at_start=progress.trained_tokens,
        valid_sample=periodic_sample(run.data.valid, hp.seed) if run.data.valid is not None else None,
    )
    run.model.module.train()
    for epoch in range(hp.n_epochs):
        for index, group in enumerate(_step_groups(run, epoch)):
            if epoch * run.optim.steps_per_epoch + index < progress.step:
                continue  # done before the checkpoint we resumed from
            if _stop_requested(run):
                _stop(run, progress)
            train_step(run, progress, group)
            _after_step(run, progress, meter, epoch=epoch)
            if progress.stopped_early:
                return


def _stop_requested(run: TrainingRun) -> bool:
    """Whether any process was asked to stop: every rank must take the same decision, as the checkpoint
    is a collective (one tiny all-reduce per step when grouped)."""
    flag = 1.0 if stop.requested() else 0.0
    return all_sum(run.env, [flag])[0] > 0


def _stop(run: TrainingRun, progress: Progress) -> None:
    """A checkpoint at the current step unless the newest one is already there, then TrainingStopped."""
    latest = newest_checkpoint(run.checkpoints)
    saved = checkpoint_step(latest) if latest is not None else None
    step = progress.step
    if step > 0 and saved != step:
        save_checkpoint(run, progress)
    if step > 0:
        run.main_events.message(
            f"Training stopped at step {step} on request: checkpoint saved; a resumed run continues from it",
            data={"step": step},
        )
    else:
        run.main_events.message("Training stopped on request before its first step")
    raise stop.TrainingStopped(step)


def save(run: TrainingRun, progress: Progress) -> TrainResult:
    """The result written, and the run summed up. With validation data the delivered weights are the
    best evaluation's (restored from its checkpoint when later steps did worse), evaluated once more
    over the whole validation set (`full_valid_*`); the metrics log becomes results.csv."""
    delivered = progress.step
    best = progress.best.step
    if best is not None and best != progress.step:
        restore_weights(run, best)
        delivered = best
        run.main_events.message(
            f"Delivering the checkpoint of step {best}: the best validation loss ({progress.best.valid_loss:.4f})",
            data={"delivered_step": best},
        )
    full: dict[str, float] = {}
    if run.data.valid is not None:
        full = prefixed("full_valid_", evaluate_data(run, run.data.valid))
        _log_metrics(run, {"step": progress.step, "delivered_step": delivered, **full})
    if run.env.is_main:
        (run.req.output_dir / CONTRACT.results_csv_name).write_text(results_csv(run.metrics_log))
    result_dir = save_result(run)
    final_loss = progress.loss if progress.loss is not None else float("nan")
    return TrainResult(
        steps=progress.step,
        trained_tokens=progress.trained_tokens,
        first_loss=progress.first_loss or final_loss,
        final_loss=final_loss,
        result_dir=result_dir,
        resumed_from=progress.resumed_from,
        delivered_step=delivered,
        best_step=best,
        early_stopped=progress.stopped_early,
        valid_metrics=dict(progress.valid),
        full_valid_metrics=full,
        validation_split=run.data.split,
    )


# --- setup ----------------------------------------------------------------------------------------------


def setup_data(req: TrainRequest) -> Data:
    """The tokenizer and the encoded training (and validation) examples; every rank reads all of them."""
    from transformers import AutoTokenizer

    hp = req.hyperparameters
    tokenizer = AutoTokenizer.from_pretrained(req.base_model, trust_remote_code=req.family in ("chatglm3",))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    max_len = min(
        hp.max_seq_length, getattr(tokenizer, "model_max_length", hp.max_seq_length) or hp.max_seq_length
    )
    # DPO reads preference pairs (preferences.py); either loader refuses the other objective's lines.
    load = load_preferences if req.objective == "dpo" else load_jsonl
    train: Dataset | PreferenceDataset = load(req.training_file, tokenizer, req.family, max_len)
    valid = load(req.validation_file, tokenizer, req.family, max_len) if req.validation_file else None
    split = None
    if valid is None:
        train, valid, split = split_validation(train, hp.validation_split, hp.seed)
    req.events.message(
        f"Loaded {len(train.examples)} training examples ({train.tokens} tokens, {train.truncated} truncated, "
        f"{train.skipped} skipped)"
        + (f" and {len(valid.examples)} validation examples" if valid else "")
        + (f" (held out of the training file: validation_split {split.fraction})" if split else ""),
        data={"validation_split": split.to_json()} if split else None,
    )
    return Data(tokenizer=tokenizer, pad_id=pad_id, train=train, valid=valid, split=split)


def setup_model(req: TrainRequest, env: DistEnv) -> Model:
    """The model, LoRA-wrapped for `lora`, with activation checkpointing when asked, and sharded with
    FSDP2 in a process group.

    In a group the weights load in fp32: they are the master copy FSDP2 shards and AdamW updates, and the
    mixed-precision policy gathers them in bf16 for compute. A single LoRA process keeps the frozen base
    in bf16 on a GPU (PEFT keeps the adapters in fp32)."""
    from transformers import AutoModelForCausalLM

    hp = req.hyperparameters
    on_gpu = env.device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    load_dtype = torch.float32 if env.grouped or not bf16 else torch.bfloat16
    # Full-parameter training from a fine-tuned model (INIT_MODEL_URI's model/) loads its weights instead.
    source = req.init_model if req.init_model is not None and req.method == "full" else req.base_model
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=load_dtype, trust_remote_code=req.family in ("chatglm3",)
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
            # The family's modules, as contract/catalog.json states them.
            target_modules=CATALOG.lora_targets(req.family),
            task_type="CAUSAL_LM",
        )
        if req.init_model is not None:
            from peft import PeftModel

            # From a fine-tuned adapter (INIT_MODEL_URI's adapter/): it trains on, with its own rank,
            # alpha and target modules.
            model = PeftModel.from_pretrained(model, req.init_model, is_trainable=True)  # type: ignore[assignment]
        else:
            model = get_peft_model(model, lora)  # type: ignore[assignment]
        if checkpointing:
            model.enable_input_require_grads()
    model.to(env.device)  # type: ignore[arg-type]
    compute = load_dtype
    if env.grouped:
        shard_model(model, env)
        compute = mixed_precision(env).param_dtype or torch.float32
    params = [p for p in model.parameters() if p.requires_grad]
    return Model(module=model, params=params, compute_dtype=compute)


def setup_optimizer(
    req: TrainRequest, params: list[torch.nn.Parameter], train: Dataset | PreferenceDataset
) -> Optimization:
    """AdamW (over the sharded fp32 parameters in a group) and the warmup schedule; the step counts."""
    from transformers import get_scheduler

    hp = req.hyperparameters
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate_for(req.method), weight_decay=hp.weight_decay)
    batches_per_epoch = math.ceil(len(train.examples) / hp.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / hp.gradient_accumulation_steps)
    total_steps = steps_per_epoch * hp.n_epochs
    scheduler = get_scheduler(
        hp.lr_scheduler,
        optimizer,
        num_warmup_steps=int(total_steps * hp.warmup_ratio),
        num_training_steps=total_steps,
    )
    return Optimization(
        optimizer=optimizer, scheduler=scheduler, steps_per_epoch=steps_per_epoch, total_steps=total_steps
    )


# --- the loop -------------------------------------------------------------------------------------------


@dataclass
class Meter:
    """Throughput since this process started, and the throttle of the metrics events."""

    started: float
    tokens_at_start: int
    # The validation examples the periodic evaluations read (evaluation.periodic_sample).
    valid_sample: Any = None
    last_report: float = 0.0


def _announce(run: TrainingRun) -> None:
    hp, env = run.req.hyperparameters, run.env
    trainable = sum(p.numel() for p in run.model.params) * (env.world_size if env.grouped else 1)
    run.main_events.message(
        f"Training {run.req.method} on {env.world_size} × {env.device.split(':')[0]} "
        f"({run.model.compute_dtype}): {trainable:,} trainable parameters, "
        f"{run.optim.total_steps} steps of {hp.batch_size}×{hp.gradient_accumulation_steps} examples",
        data={"world_size": env.world_size, "nodes": env.nodes},
    )


def _start_metrics_log(run: TrainingRun, progress: Progress) -> None:
    """metrics.jsonl starts empty, or (restored by a resume) holds the lines up to the checkpoint."""
    run.req.output_dir.mkdir(parents=True, exist_ok=True)
    if progress.resumed_from is None and run.env.is_main:
        run.metrics_log.unlink(missing_ok=True)


def _step_groups(run: TrainingRun, epoch: int) -> list[list[list[int]]]:
    """The epoch's batches (a function of the seed and the epoch), grouped into optimizer steps."""
    hp = run.req.hyperparameters
    batches = length_grouped_batches(run.data.lengths, hp.batch_size, hp.seed + epoch)
    accumulate = hp.gradient_accumulation_steps
    return [batches[i : i + accumulate] for i in range(0, len(batches), accumulate)]


def train_step(run: TrainingRun, progress: Progress, group: list[list[int]]) -> None:
    """One optimizer step: backward over the group's batches, gradients clipped at norm 1, AdamW, the
    schedule."""
    if isinstance(run.data.train, PreferenceDataset):
        from .dpo import preference_step

        loss, tokens, metrics = preference_step(run, group)
    else:
        loss, tokens, accuracy = _accumulated_step(
            run.model.module, group, data=run.data.train, pad_id=run.data.pad_id, env=run.env
        )
        metrics = {"train_mean_token_accuracy": accuracy}
    torch.nn.utils.clip_grad_norm_(run.model.params, 1.0)
    run.optim.optimizer.step()
    run.optim.scheduler.step()
    run.optim.optimizer.zero_grad(set_to_none=True)
    progress.step += 1
    progress.trained_tokens += tokens
    progress.loss = loss
    progress.step_metrics = metrics
    if progress.first_loss is None:
        progress.first_loss = loss


def _after_step(run: TrainingRun, progress: Progress, meter: Meter, *, epoch: int) -> None:
    """Evaluation, metrics and a checkpoint when due, then the `on_step` observer.

    Every `eval_interval` steps and at the last one, with validation data: an evaluation, and the best
    one's weights kept as a checkpoint (the delivered model is restored to them if later steps do
    worse); `early_stopping_patience` evaluations in a row without a better validation loss stop the
    run."""
    hp, step = run.req.hyperparameters, progress.step
    is_last = step == run.optim.total_steps
    evaluated = meter.valid_sample is not None and (
        step % eval_interval(hp.eval_interval, run.optim.total_steps) == 0 or is_last
    )
    improved = False
    if evaluated:
        progress.valid = prefixed("valid_", evaluate_data(run, meter.valid_sample))
        progress.valid_step = step
        improved = progress.best.record(step, progress.valid["valid_loss"])
        progress.stopped_early = not is_last and progress.best.exhausted(hp.early_stopping_patience)
    now = time.time()
    if is_last or step == 1 or evaluated or now - meter.last_report >= hp.metrics_interval_seconds:
        report_metrics(run, progress, meter, epoch=epoch, evaluated=evaluated, now=now)
    if not is_last and not progress.stopped_early and (step % hp.checkpoint_every_steps == 0 or improved):
        save_checkpoint(run, progress)
        run.main_events.message(
            f"Checkpoint saved at step {step}" + (" (best validation loss so far)" if improved else "")
        )
    if progress.stopped_early:
        run.main_events.message(
            f"Early stopping at step {step}: no better validation loss in {progress.best.evals_since} "
            f"evaluations since step {progress.best.step}",
            data={"best_step": progress.best.step, "early_stopping_patience": hp.early_stopping_patience},
        )
    if run.req.on_step is not None:
        run.req.on_step(step)


def report_metrics(
    run: TrainingRun, progress: Progress, meter: Meter, *, epoch: int, evaluated: bool, now: float
) -> None:
    """A metrics event and a metrics.jsonl line (rank 0)."""
    step, total = progress.step, run.optim.total_steps
    elapsed = max(now - meter.started, 1e-9)
    record: dict[str, Any] = {
        "step": step,
        "total_steps": total,
        "epoch": epoch + 1,
        "train_loss": progress.loss,
        "learning_rate": run.optim.scheduler.get_last_lr()[0],
        "tokens_per_second": (progress.trained_tokens - meter.tokens_at_start) / elapsed,
        "eta_seconds": (total - step) * elapsed / max(step - (progress.resumed_from or 0), 1),
        "trained_tokens": progress.trained_tokens,
        **progress.step_metrics,
    }
    if evaluated:
        record.update(progress.valid)
    _log_metrics(run, record)
    meter.last_report = now


def _log_metrics(run: TrainingRun, record: dict[str, Any]) -> None:
    """A metrics event and a metrics.jsonl line (rank 0)."""
    if run.env.is_main:
        run.req.events.metrics(record)
        with run.metrics_log.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _accumulated_step(
    model: Any, group: list[list[int]], data: Dataset, pad_id: int, env: DistEnv
) -> tuple[float, int, float]:
    """Backward over the batches of one optimizer step; the loss is the mean over all trained tokens of
    the group on all ranks, so accumulation and sharding give the same gradient as one large batch.
    FSDP2 averages gradients over ranks, hence the world-size factor. Returns the global mean loss, the
    tokens of the group (each counted once) and the share of trained tokens the model predicted (its
    argmax), OpenAI's `train_mean_token_accuracy`. Positional parameters: bench/trainer calls it so."""
    total_trained = sum(
        sum(1 for label in data.examples[i].labels[1:] if label != IGNORE) for b in group for i in b
    )
    scale = env.world_size if env.grouped else 1
    loss_sum, tokens, correct = 0.0, 0, 0
    for batch in group:
        mine, weight = my_part(batch, env)
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
        if weight:
            target = labels[:, 1:]
            correct += int(((logits[:, :-1].argmax(-1) == target) & (target != IGNORE)).sum().item())
    loss_sum, total_tokens, total_correct = all_sum(env, [loss_sum, float(tokens), float(correct)])
    return loss_sum / max(total_trained, 1), int(total_tokens), total_correct / max(total_trained, 1)


def evaluate_data(run: TrainingRun, data: Any) -> dict[str, float]:
    """The objective's validation metrics over `data`: `loss` and `mean_token_accuracy` for supervised
    runs, `loss`, `reward_accuracy` and `reward_margin` for DPO."""
    if run.req.objective == "dpo":
        from .dpo import evaluate_preferences

        return evaluate_preferences(run, data)
    loss, accuracy = evaluate(run, data)
    return {"loss": loss, "mean_token_accuracy": accuracy}


@torch.no_grad()
def evaluate(run: TrainingRun, data: Dataset) -> tuple[float, float]:
    """Mean loss and token accuracy over the trained (assistant) tokens of a dataset, over all ranks."""
    model, env = run.model.module, run.env
    batch_size = run.req.hyperparameters.batch_size
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    order = sorted(range(len(data.examples)), key=lambda i: len(data.examples[i].input_ids))
    for start in range(0, len(order), batch_size):
        mine, weight = my_part(order[start : start + batch_size], env)
        batch = [data.examples[i] for i in mine]
        ids, labels, mask = (torch.tensor(x, device=env.device) for x in pad_batch(batch, run.data.pad_id))
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


# --- the result ---------------------------------------------------------------------------------------


def save_result(run: TrainingRun) -> Path:
    """The adapter (`adapter/`) or the consolidated full model (`model/`: safetensors in the base
    model's dtype, config and tokenizer: what vLLM loads), written by rank 0."""
    env, model, method = run.env, run.model.module, run.req.method
    result_dir = run.req.output_dir / _weights_dir(method)
    state = full_state_dict(model, env) if env.grouped else None
    if env.is_main:
        if result_dir.exists():
            shutil.rmtree(result_dir)
        if state is not None:
            saved_dtype = _saved_dtype(model)
            if method == "full" and saved_dtype is not None:
                state = {k: v.to(saved_dtype) if v.is_floating_point() else v for k, v in state.items()}
            model.save_pretrained(result_dir, state_dict=state, safe_serialization=True)
        else:
            model.save_pretrained(result_dir, safe_serialization=True)
        run.data.tokenizer.save_pretrained(result_dir)
    barrier(env)
    return result_dir


def _saved_dtype(model: Any) -> torch.dtype | None:
    """The dtype the base model's weights were published in (config `torch_dtype`), for the export."""
    config = getattr(model, "config", None)
    value = getattr(config, "torch_dtype", None) or getattr(config, "dtype", None)
    if isinstance(value, torch.dtype):
        return value
    return getattr(torch, value) if isinstance(value, str) and hasattr(torch, value) else None
