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
    "n_epochs": 12,
    "batch_size": 1,
    "learning_rate": 2e-3,
    "checkpoint_every_steps": 8,
    "eval_every_steps": 1000,
    "max_seq_length": 128,
    "seed": 3,
    "metrics_interval_seconds": 0,
}


def run(tiny_model: Path, train_file: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ft_trainer.local_run",
            "--base-model",
            str(tiny_model),
            "--method",
            "full",
            "--train",
            str(train_file),
            "--out",
            str(out),
            "--hyperparameters",
            json.dumps(HP),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def final(process: subprocess.Popen[str]) -> dict[str, object]:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return json.loads(output.strip().splitlines()[-1])


def test_killed_run_resumes_from_its_newest_checkpoint(
    tiny_model: Path, train_file: Path, tmp_path: Path
) -> None:
    reference = final(run(tiny_model, train_file, tmp_path / "reference"))

    out = tmp_path / "killed"
    victim = run(tiny_model, train_file, out)
    deadline = time.time() + 300
    while not list((out / "checkpoints").glob("step-*/checkpoint.json")):
        assert victim.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    resumed = final(run(tiny_model, train_file, out))
    assert resumed["resumed_from"] is not None and int(resumed["resumed_from"]) >= 8  # type: ignore[arg-type]
    assert resumed["steps"] == reference["steps"]
    assert abs(float(resumed["final_loss"]) - float(reference["final_loss"])) < 1e-3 + 0.02 * float(
        reference["final_loss"]
    )  # type: ignore[arg-type]
