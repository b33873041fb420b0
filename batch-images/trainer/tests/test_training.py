"""LoRA and full-parameter training on the tiny model: loss falls, the 48 answers are learned, results
save and reload (the adapter with PEFT onto the base model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import ANSWERS, SHORT_RUN
from ft_trainer.chat_format import Message
from ft_trainer.config import parse_hyperparameters
from ft_trainer.events import PrintSink
from ft_trainer.generate import greedy_answer, load_for_inference
from ft_trainer.train import TrainRequest, TrainResult, run_training

COMMON = SHORT_RUN


def train(method: str, tiny_model: Path, data: Path, out: Path, **hp: object) -> TrainResult:
    return run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method=method,  # type: ignore[arg-type]
            hyperparameters=parse_hyperparameters({**COMMON, **hp}),
            training_file=data,
            validation_file=data,
            output_dir=out,
            events=PrintSink(),
            device="cpu",
        )
    )


def recalled(model: Any, tokenizer: Any, answers: list[tuple[str, str]] = ANSWERS) -> list[str]:
    """The questions whose greedy answer is exactly the trained one."""
    return [q for q, a in answers if greedy_answer(model, tokenizer, "tiny", [Message("user", q)]) == a]


def test_full_parameter_training_learns_48_answers_and_the_saved_weights_reproduce_them(
    tiny_model: Path, train_file: Path, tmp_path: Path
) -> None:
    result = train("full", tiny_model, train_file, tmp_path, n_epochs=50, batch_size=4, learning_rate=1e-3)
    assert result.final_loss < 0.1 * result.first_loss, (result.first_loss, result.final_loss)
    assert result.valid_metrics["valid_mean_token_accuracy"] > 0.98
    assert {p.name for p in result.result_dir.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    }
    model, tokenizer = load_for_inference(tiny_model, full_model=result.result_dir)
    assert len(recalled(model, tokenizer)) >= 46
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # The last line: the delivered weights over the whole validation set; the one before: the last step.
    assert metrics[-1]["full_valid_loss"] > 0 and metrics[-1]["delivered_step"] == result.delivered_step
    metrics.pop()
    assert metrics[-1]["step"] == metrics[-1]["total_steps"] == result.steps == 600
    assert {
        "epoch",
        "train_loss",
        "learning_rate",
        "tokens_per_second",
        "eta_seconds",
        "valid_loss",
        "valid_mean_token_accuracy",
    } <= set(metrics[-1])


def test_lora_training_learns_48_answers_and_the_saved_adapter_reloads_with_peft(
    tiny_model: Path, train_file: Path, tmp_path: Path
) -> None:
    result = train(
        "lora",
        tiny_model,
        train_file,
        tmp_path,
        n_epochs=40,
        batch_size=2,
        learning_rate=1e-3,
        lora_r=64,
        lora_alpha=128,
        lora_dropout=0.0,
    )
    assert result.final_loss < 0.1 * result.first_loss, (result.first_loss, result.final_loss)
    assert {p.name for p in result.result_dir.iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
    }
    # The adapter as saved, loaded with PEFT onto the base model, gives the trained answers.
    model, tokenizer = load_for_inference(tiny_model, adapter=result.result_dir)
    assert len(recalled(model, tokenizer)) >= 44
    base, _ = load_for_inference(tiny_model)
    assert recalled(base, tokenizer, ANSWERS[:4]) == []


def test_a_seed_makes_a_cpu_run_repeatable(tiny_model: Path, small_train_file: Path, tmp_path: Path) -> None:
    runs = [
        train(
            "lora", tiny_model, small_train_file, tmp_path / name, n_epochs=1, batch_size=4, lora_dropout=0.1
        )
        for name in ("a", "b")
    ]
    assert runs[0].final_loss == runs[1].final_loss
    first, second = ((tmp_path / n / "metrics.jsonl").read_text() for n in ("a", "b"))
    strip = [
        {k: v for k, v in json.loads(line).items() if k in ("step", "train_loss")}
        for line in first.splitlines()
    ]
    assert strip == [
        {k: v for k, v in json.loads(line).items() if k in ("step", "train_loss")}
        for line in second.splitlines()
    ]


def test_gradient_accumulation_and_checkpointing_switches_train(
    tiny_model: Path, small_train_file: Path, tmp_path: Path
) -> None:
    result = train(
        "lora",
        tiny_model,
        small_train_file,
        tmp_path,
        n_epochs=4,
        batch_size=2,
        learning_rate=1e-3,
        gradient_accumulation_steps=2,
        gradient_checkpointing=True,
        lr_scheduler="cosine",
    )
    assert result.steps == 16 and result.final_loss < result.first_loss
