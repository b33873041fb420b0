"""Full-parameter DPO under torchrun: 2 gloo processes on CPU follow 1 process with the same global batch
(the reference log-probabilities computed sharded at setup, the loss a mean over every rank's pairs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_distributed import finished, local_run
from test_dpo import PAIRS, write_preferences

# 8 pairs, 2 global batches of 4 an epoch, 3 epochs: each rank holds 2 pairs of each batch.
HP = {"n_epochs": 3, "batch_size": 4, "learning_rate": 1e-4, "max_seq_length": 128, "seed": 7}
HP |= {"metrics_interval_seconds": 0, "checkpoint_every_steps": 100000, "eval_interval": 100000}
# The runs differ only in the order of floating-point sums (the all-reduces); measured ~1e-7.
TOLERANCE = 1e-5


def step_metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_give_the_dpo_loss_and_rewards_of_one_process_with_the_same_global_batch(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_preferences(tmp_path / "pref.jsonl", PAIRS[:8])
    one = local_run(tiny_model, data, tmp_path / "one", HP, nproc=1, objective="dpo")
    two = local_run(tiny_model, data, tmp_path / "two", HP, nproc=2, objective="dpo")
    single, double = finished(one), finished(two)
    assert (single["steps"], double["steps"], double["world_size"]) == (6, 6, 2)
    assert single["trained_tokens"] == double["trained_tokens"]  # each pair counted once
    a, b = step_metrics(tmp_path / "one"), step_metrics(tmp_path / "two")
    names = ("train_loss", "reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward")
    worst = max(abs(x[name] - y[name]) for x, y in zip(a, b) for name in names)
    print(f"largest per-step difference of 2 processes from 1 (loss and rewards): {worst:.1e}")
    assert [x["step"] for x in a] == [y["step"] for y in b] == list(range(1, 7))
    assert worst <= TOLERANCE, (a, b)
    # The first step of both sees the reference itself, sharded or not.
    assert max(abs(a[0]["reward_margin"]), abs(b[0]["reward_margin"])) < 1e-5
    assert a[-1]["train_loss"] < a[0]["train_loss"]
