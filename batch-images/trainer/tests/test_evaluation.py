"""Evaluation during training: the named metrics, early stopping, the best checkpoint delivered, the
validation split and the CSV result file; and the pure rules of evaluation.py."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ANSWERS, SHORT_RUN, write_jsonl
from ft_trainer.config import parse_hyperparameters
from ft_trainer.evaluation import Best, eval_interval, periodic_sample, results_csv, split_validation
from ft_trainer.events import EventSink
from ft_trainer import train as ft_train
from ft_trainer.train import TrainRequest, TrainResult, run_training
from safetensors.torch import load_file


class Recorder(EventSink):
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any] | None]] = []
        self.metrics_events: list[dict[str, Any]] = []

    def message(self, text: str, level: Any = "info", data: dict[str, Any] | None = None) -> None:
        self.messages.append((text, data))

    def metrics(self, data: dict[str, Any]) -> None:
        self.metrics_events.append(dict(data))


# --- the pure rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Items:
    examples: list[int]


def test_a_validation_split_is_seeded_keeps_one_example_each_side_and_says_how_many() -> None:
    train, valid, split = split_validation(Items(list(range(100))), 0.2, seed=3)
    again = split_validation(Items(list(range(100))), 0.2, seed=3)
    assert valid is not None and split is not None
    assert (len(train.examples), len(valid.examples), split.examples) == (80, 20, 20)
    assert sorted(train.examples + valid.examples) == list(range(100))
    assert again[1] == valid and split_validation(Items(list(range(100))), 0.2, seed=4)[1] != valid
    assert len(split_validation(Items([1, 2, 3]), 0.01, seed=0)[1].examples) == 1  # type: ignore[union-attr]
    assert len(split_validation(Items([1, 2]), 0.2, seed=0)[0].examples) == 1
    assert split_validation(Items([1]), 0.2, seed=0)[1] is None
    assert split_validation(Items([1, 2, 3]), 0, seed=0) == (Items([1, 2, 3]), None, None)


def test_eval_interval_auto_makes_about_ten_evaluations() -> None:
    assert [eval_interval(None, n) for n in (1, 9, 10, 95, 1000)] == [1, 1, 1, 10, 100]
    assert eval_interval(7, 1000) == 7


def test_periodic_evaluations_read_a_fixed_sample_of_a_long_validation_set() -> None:
    long = Items(list(range(2000)))
    sample = periodic_sample(long, seed=1)
    assert len(sample.examples) == 512 and sample == periodic_sample(long, seed=1)
    assert periodic_sample(Items([1, 2]), seed=1) == Items([1, 2])


def test_the_best_evaluation_and_patience() -> None:
    best = Best()
    assert best.record(2, 1.0) and best.record(4, 0.9)
    assert not best.record(6, 0.95) and not best.exhausted(2) and not best.exhausted(None)
    assert not best.record(8, 0.9)  # equal is not better
    assert best.exhausted(2) and (best.step, best.evals_since) == (4, 2)
    assert Best.from_json(json.loads(json.dumps(best.to_json()))) == best
    assert Best.from_json(None) == Best() and Best.from_json({"best_step": "x"}) == Best()


def test_results_csv_merges_a_steps_lines_and_leaves_unmeasured_cells_empty(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 1, "epoch": 1, "train_loss": 2.5, "total_steps": 2, "tokens_per_second": 9.0},
        {"step": 2, "epoch": 1, "train_loss": 1.25, "valid_loss": 1.5, "valid_mean_token_accuracy": 0.5},
        {"step": 2, "full_valid_loss": 1.4, "delivered_step": 2},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = list(csv.DictReader(io.StringIO(results_csv(log))))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert (
        rows[0]["train_loss"] == "2.5" and rows[0]["valid_loss"] == "" and "tokens_per_second" not in rows[0]
    )
    assert rows[1]["valid_loss"] == "1.5" and rows[1]["full_valid_loss"] == "1.4"
    assert rows[1]["delivered_step"] == "2"  # a metric outside the known columns comes after them
    assert results_csv(tmp_path / "none.jsonl").startswith("step,epoch,train_loss,")


# --- runs on the tiny model -----------------------------------------------------------------------------


def _train(
    method: str,
    tiny_model: Path,
    train_file: Path,
    valid_file: Path | None,
    out: Path,
    events: EventSink,
    **hp: object,
) -> TrainResult:
    return run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method=method,  # type: ignore[arg-type]
            hyperparameters=parse_hyperparameters(
                {**SHORT_RUN, "batch_size": 4, "learning_rate": 2e-3, **hp}
            ),
            training_file=train_file,
            validation_file=valid_file,
            output_dir=out,
            events=events,
            device="cpu",
        )
    )


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in sorted(directory.glob("*.safetensors")):
        state.update(load_file(str(file)))
    return state


def test_a_run_with_validation_data_reports_the_named_metrics_and_checkpoints_carry_them(
    tiny_model: Path, small_train_file: Path, tmp_path: Path
) -> None:
    events = Recorder()
    result = _train(
        "lora",
        tiny_model,
        small_train_file,
        small_train_file,
        tmp_path,
        events,
        n_epochs=3,
        eval_interval=4,
        metrics_interval_seconds=0,
    )
    evaluations = [m for m in events.metrics_events if "valid_loss" in m]
    assert [m["step"] for m in evaluations] == [4, 8, 12]
    for m in evaluations:
        assert m["valid_loss"] > 0 and 0 <= m["valid_mean_token_accuracy"] <= 1
        assert 0 <= m["train_mean_token_accuracy"] <= 1
    final = events.metrics_events[-1]
    assert set(final) == {"step", "delivered_step", "full_valid_loss", "full_valid_mean_token_accuracy"}
    assert result.full_valid_metrics == {k: final[k] for k in final if k.startswith("full_valid_")}
    # The validation set is small, so the periodic evaluations read all of it: the delivered (best)
    # step's validation loss is the full one.
    best = next(m for m in evaluations if m["step"] == result.best_step)
    assert final["full_valid_loss"] == pytest.approx(best["valid_loss"], rel=1e-5)
    # Each improving evaluation before the last step left a checkpoint with its validation metrics.
    manifests = [
        json.loads(p.read_text()) for p in sorted(tmp_path.glob("checkpoints/step-*/checkpoint.json"))
    ]
    assert manifests and all("valid_loss" in m["metrics"] for m in manifests)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 13)]
    assert rows[-1]["full_valid_loss"] != "" and rows[3]["valid_loss"] != ""


class ScriptedValidation:
    """Stands in for `evaluate_data`: the validation losses a test scripts, one per evaluation (the
    training is real), so that which evaluation is best does not depend on how the model learns."""

    def __init__(self, losses: list[float]) -> None:
        self.losses = losses
        self.calls = 0

    def __call__(self, run: Any, data: Any) -> dict[str, float]:
        loss = self.losses[min(self.calls, len(self.losses) - 1)]
        self.calls += 1
        return {"loss": loss, "mean_token_accuracy": 0.5}


def test_early_stopping_stops_and_the_best_checkpoint_is_the_delivered_model(
    tiny_model: Path, small_train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evaluations at steps 4, 8, 12, 16, 20: the best at 12, then two without a better loss.
    scripted = ScriptedValidation([3.0, 2.0, 1.5, 1.6, 1.5, 9.0, 1.25])
    monkeypatch.setattr(ft_train, "evaluate_data", scripted)
    events = Recorder()
    result = _train(
        "lora",
        tiny_model,
        small_train_file,
        small_train_file,
        tmp_path,
        events,
        n_epochs=30,
        eval_interval=4,
        early_stopping_patience=2,
        checkpoint_every_steps=8,
        metrics_interval_seconds=3600,
    )
    evaluations = {m["step"]: m["valid_loss"] for m in events.metrics_events if "valid_loss" in m}
    assert evaluations == {4: 3.0, 8: 2.0, 12: 1.5, 16: 1.6, 20: 1.5}
    assert (result.early_stopped, result.steps, result.best_step, result.delivered_step) == (True, 20, 12, 12)
    assert any(text.startswith("Early stopping at step 20") for text, _ in events.messages)
    # The delivered adapter is the best checkpoint's, tensor for tensor, not a later one's.
    delivered = _weights(result.result_dir)
    best = _weights(tmp_path / "checkpoints/step-12/adapter")
    later = _weights(tmp_path / "checkpoints/step-16/adapter")
    assert delivered.keys() == best.keys() == later.keys()
    assert all(torch.equal(delivered[k], best[k]) for k in delivered)
    assert not all(torch.equal(delivered[k], later[k]) for k in delivered)
    # The delivered weights over the whole validation set: the next evaluation, after the stop.
    assert scripted.calls == 6 and result.full_valid_metrics["full_valid_loss"] == 9.0
    best_manifest = json.loads((tmp_path / "checkpoints/step-12/checkpoint.json").read_text())
    assert best_manifest["metrics"]["valid_loss"] == 1.5
    assert best_manifest["evaluation"] == {"best_step": 12, "best_valid_loss": 1.5, "evals_since_best": 0}


def test_without_patience_the_run_goes_on_but_still_delivers_the_best_full_model(
    tiny_model: Path, small_train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ft_train, "evaluate_data", ScriptedValidation([3.0, 2.0, 1.0, 1.2, 1.4, 1.1, 1.3, 1.5])
    )
    events = Recorder()
    result = _train(
        "full",
        tiny_model,
        small_train_file,
        small_train_file,
        tmp_path,
        events,
        n_epochs=8,
        eval_interval=4,
        metrics_interval_seconds=3600,
    )
    assert (result.early_stopped, result.steps, result.best_step, result.delivered_step) == (
        False,
        32,
        12,
        12,
    )
    # Full-parameter checkpoints are DCP shards (a process group of one): read back as one state dict.
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(tmp_path / "checkpoints/step-12/dcp", tmp_path / "best.pt")
    best = torch.load(tmp_path / "best.pt", weights_only=False)["model"]
    delivered = _weights(result.result_dir)
    assert delivered and set(delivered) <= set(best)
    assert all(torch.equal(delivered[k], best[k].to(delivered[k].dtype)) for k in delivered)
    assert any(data == {"delivered_step": 12} for _, data in events.messages)


def test_validation_split_holds_out_part_of_the_training_file(tiny_model: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", ANSWERS[:20])
    events = Recorder()
    result = _train(
        "lora", tiny_model, data, None, tmp_path / "out", events, n_epochs=1, validation_split=0.2
    )
    assert result.validation_split is not None
    assert result.validation_split.to_json() == {"fraction": 0.2, "examples": 4}
    loaded = next(data for text, data in events.messages if text.startswith("Loaded"))
    assert loaded == {"validation_split": {"fraction": 0.2, "examples": 4}}
    assert result.steps == 4  # 16 training examples in batches of 4
    assert "full_valid_loss" in result.full_valid_metrics
