"""A run killed with SIGKILL after a checkpoint resumes from it and ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HP = {
    "n_epochs": 4,
    "batch_size": 1,
    "learning_rate": 1e-3,
    "checkpoint_every_steps": 8,
    "eval_interval": 100000,
    "max_seq_length": 128,
    "seed": 3,
    "metrics_interval_seconds": 0,
}


def start(tiny_model: Path, data: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ft_trainer.local_run", "--base-model", str(tiny_model), "--method", "full"]
        + ["--train", str(data), "--out", str(out), "--hyperparameters", json.dumps(HP)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def final(process: subprocess.Popen[str]) -> dict[str, object]:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return dict(json.loads(output.strip().splitlines()[-1]))


def test_a_run_killed_after_a_checkpoint_resumes_from_it_and_ends_like_an_uninterrupted_run(
    tiny_model: Path, small_train_file: Path, tmp_path: Path
) -> None:
    # The uninterrupted reference runs beside the victim (one thread each).
    uninterrupted = start(tiny_model, small_train_file, tmp_path / "reference")
    out = tmp_path / "killed"
    victim = start(tiny_model, small_train_file, out)
    deadline = time.time() + 300
    while not list((out / "checkpoints").glob("step-*/checkpoint.json")):
        assert victim.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    resumed = final(start(tiny_model, small_train_file, out))
    reference = final(uninterrupted)
    assert reference["steps"] == 64 and reference["resumed_from"] is None
    assert isinstance(resumed["resumed_from"], int) and 8 <= resumed["resumed_from"] < 64
    assert resumed["steps"] == reference["steps"]
    final_loss, expected = float(resumed["final_loss"]), float(reference["final_loss"])  # type: ignore[arg-type]
    assert abs(final_loss - expected) <= 1e-3 + 0.02 * expected, (final_loss, expected)
    # metrics.jsonl covers the whole run once: the killed run's lines up to the checkpoint, then the rest.
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 65))
