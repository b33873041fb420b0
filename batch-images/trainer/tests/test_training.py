"""LoRA and full-parameter training on the tiny model: loss falls, results save and reload."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ANSWERS
from ft_trainer.chat_format import Message
from ft_trainer.config import parse_hyperparameters
from ft_trainer.events import PrintSink
from ft_trainer.generate import greedy_answer, load_for_inference
from ft_trainer.train import TrainRequest, run_training

COMMON = {
    "batch_size": 1,
    "warmup_ratio": 0.05,
    "checkpoint_every_steps": 1000,
    "eval_every_steps": 1000,
    "max_seq_length": 128,
    "seed": 7,
}


def train(method: str, tiny_model: Path, train_file: Path, out: Path, **hp: object):  # type: ignore[no-untyped-def]
    return run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method=method,  # type: ignore[arg-type]
            hyperparameters=parse_hyperparameters({**COMMON, **hp}),
            training_file=train_file,
            validation_file=train_file,
            output_dir=out,
            events=PrintSink(),
            device="cpu",
        )
    )


def test_full_parameter_training_learns_the_answers_and_the_saved_weights_reproduce_them(
    tiny_model: Path, train_file: Path, tmp_path: Path
) -> None:
    result = train("full", tiny_model, train_file, tmp_path, n_epochs=40, learning_rate=3e-3)
    assert result.final_loss < 0.05 * result.first_loss, (result.first_loss, result.final_loss)
    assert result.valid_token_accuracy is not None and result.valid_token_accuracy > 0.95
    model, tokenizer = load_for_inference(tiny_model, full_model=result.result_dir)
    for question, answer in ANSWERS:
        assert greedy_answer(model, tokenizer, "tiny", [Message("user", question)]) == answer
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == metrics[-1]["total_steps"] == result.steps
    assert {
        "train_loss",
        "learning_rate",
        "tokens_per_second",
        "eta_seconds",
        "valid_loss",
        "valid_token_accuracy",
    } <= set(metrics[-1])


def test_lora_training_learns_the_answers_and_the_saved_adapter_reloads_with_peft(
    tiny_model: Path, train_file: Path, tmp_path: Path
) -> None:
    # Eight copies of the four answers in batches of four: 400 optimizer steps.
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text(train_file.read_text() * 8)
    result = train(
        "lora",
        tiny_model,
        repeated,
        tmp_path / "run",
        n_epochs=50,
        batch_size=4,
        learning_rate=1e-3,
        lora_r=64,
        lora_alpha=128,
        lora_dropout=0.0,
        lr_scheduler="linear",
    )
    assert result.final_loss < 0.05 * result.first_loss, (result.first_loss, result.final_loss)
    assert {p.name for p in result.result_dir.iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    # The adapter as saved, loaded with PEFT onto the base model, gives the trained answers.
    model, tokenizer = load_for_inference(tiny_model, adapter=result.result_dir)
    for question, answer in ANSWERS:
        assert greedy_answer(model, tokenizer, "tiny", [Message("user", question)]) == answer
    base, _ = load_for_inference(tiny_model)
    assert greedy_answer(base, tokenizer, "tiny", [Message("user", ANSWERS[0][0])]) != ANSWERS[0][1]


def test_a_seed_makes_a_cpu_run_repeatable(tiny_model: Path, train_file: Path, tmp_path: Path) -> None:
    a = train("full", tiny_model, train_file, tmp_path / "a", n_epochs=2, learning_rate=1e-3)
    b = train("full", tiny_model, train_file, tmp_path / "b", n_epochs=2, learning_rate=1e-3)
    assert a.final_loss == b.final_loss
