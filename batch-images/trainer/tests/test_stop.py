"""A stop on request (SIGTERM: a pause, a Spot reclaim) writes a checkpoint at the step it reached, however
far the next periodic one is, and the next run continues from that step: its first step is the one after."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ft_contract import load_platform
from ft_trainer import stop
from ft_trainer.checkpoint import checkpoint_step, newest_checkpoint
from ft_trainer.config import parse_hyperparameters
from ft_trainer.events import PrintSink
from ft_trainer.launch import exit_code_for
from ft_trainer.train import TrainRequest, TrainResult, run_training

HP = {
    "n_epochs": 2,
    "batch_size": 2,
    "learning_rate": 1e-3,
    # Far beyond the run: only the stop writes a checkpoint.
    "checkpoint_every_steps": 10_000,
    "max_seq_length": 128,
    "seed": 5,
    "metrics_interval_seconds": 0,
}


class Recording(PrintSink):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def message(self, text: str, level: object = "info", data: dict[str, object] | None = None) -> None:
        self.messages.append(text)
        super().message(text, level, data)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fresh_stop_flag() -> Iterator[None]:
    stop.reset()
    previous = signal.getsignal(signal.SIGTERM)
    yield
    stop.reset()
    signal.signal(signal.SIGTERM, previous)


def train(
    tiny_model: Path, data: Path, out: Path, events: PrintSink, on_step: Callable[[int], None] | None = None
) -> TrainResult:
    return run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method="lora",
            hyperparameters=parse_hyperparameters(HP),
            training_file=data,
            validation_file=None,
            output_dir=out,
            events=events,
            device="cpu",
            on_step=on_step,
        )
    )


def test_sigterm_stops_after_the_current_step_with_a_checkpoint_and_the_next_run_continues_from_it(
    tiny_model: Path, small_train_file: Path, tmp_path: Path
) -> None:
    stop.install()

    def sigterm_at(step: int) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    events = Recording()
    with pytest.raises(stop.TrainingStopped) as stopped:
        train(tiny_model, small_train_file, tmp_path, events, on_step=sigterm_at)
    assert stopped.value.step == 3
    latest = newest_checkpoint(tmp_path / "checkpoints")
    assert latest is not None and checkpoint_step(latest) == 3
    assert any("stopped at step 3" in message for message in events.messages)

    stop.reset()
    resumed_steps: list[int] = []
    result = train(tiny_model, small_train_file, tmp_path, Recording(), on_step=resumed_steps.append)
    assert result.resumed_from == 3
    assert resumed_steps[0] == 4 and resumed_steps[-1] == result.steps
    # metrics.jsonl: the stopped run's lines up to its checkpoint, then the rest, each step once.
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, result.steps + 1))


def test_a_stop_requested_before_the_first_step_saves_nothing(
    tiny_model: Path, small_train_file: Path, tmp_path: Path
) -> None:
    stop.request()
    events = Recording()
    with pytest.raises(stop.TrainingStopped) as stopped:
        train(tiny_model, small_train_file, tmp_path, events)
    assert stopped.value.step == 0
    assert newest_checkpoint(tmp_path / "checkpoints") is None
    assert events.messages[-1] == "Training stopped on request before its first step"


def test_the_launcher_reports_stopped_only_when_every_worker_stopped() -> None:
    stopped = load_platform().exit_code("stopped")
    assert stopped == 143
    assert exit_code_for({0: stopped, 1: stopped}) == stopped
    assert exit_code_for({0: stopped, 1: 1}) == 1
    assert exit_code_for({0: stopped, 1: 3}) == 3
