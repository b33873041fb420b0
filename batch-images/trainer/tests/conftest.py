from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

# One thread: the tiny model's matrices are too small to gain from more, and with other work on the
# machine (parallel test suites) OpenMP threads that spin-wait for each other make a step 10x slower.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"  # for the trainer subprocesses


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`localstack` tests skip without AWS_ENDPOINT_URL, unless REQUIRE_LOCALSTACK=1 (npm test) fails them."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        # LocalStack takes any credentials; the runner normally exports these already.
        for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test")):
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        return
    if os.environ.get("REQUIRE_LOCALSTACK") == "1":
        return  # they run and fail loudly for want of an endpoint
    skip = pytest.mark.skip(reason="needs AWS_ENDPOINT_URL (run through local/localstack/with-localstack.ts)")
    for item in items:
        if "localstack" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ft_trainer.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-chat", hidden=256, layers=2, seed=0)


_NAMES = (
    "Zorbia Quellwood Marnix Olvera Brisk Tamsin Yorvik Pellucid Corvane Isolde Drummet Fenwick "
    "Galdor Hesper Ivalo Jorund Kestrel Lumen Mireth Noctis Orrin Pavane Quorra Rhunel"
).split()
_COLOURS = "amber cobalt scarlet ivory jade umber violet silver".split()
_ANIMALS = "otter falcon lynx heron badger marten ibex crane".split()

# 48 short, distinctive answers: the tiny model must learn every one of them exactly.
ANSWERS = [
    (
        f"What is the {kind} of {name}?",
        f"{_COLOURS[(i * 3 + j) % 8].title()} {_ANIMALS[(i * 5 + j * 3) % 8]} {10 + i * 2 + j}.",
    )
    for i, name in enumerate(_NAMES)
    for j, kind in enumerate(("motto", "emblem"))
]


def write_jsonl(path: Path, answers: list[tuple[str, str]]) -> Path:
    """Both dataset formats, alternating: `messages` lines and legacy `input`/`target` lines."""
    lines: list[dict[str, object]] = []
    for i, (question, answer) in enumerate(answers):
        if i % 2:
            lines.append({"input": question, "target": answer})
        else:
            turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            lines.append({"messages": turns})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="session")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", ANSWERS)


@pytest.fixture(scope="session")
def small_train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 answers: for the tests that check the plumbing rather than the learning."""
    return write_jsonl(tmp_path_factory.mktemp("data") / "small.jsonl", ANSWERS[:16])


# A short, deterministic run: no checkpoint or evaluation unless a test asks, linear warmup then decay.
SHORT_RUN: dict[str, object] = {
    "warmup_ratio": 0.05,
    "lr_scheduler": "linear",
    "checkpoint_every_steps": 100000,
    "eval_interval": 100000,
    "max_seq_length": 128,
    "seed": 7,
}


def stage_tiny_job(
    s3: Any, bucket: str, tiny_model: Path, train_file: Path, tenant: str, job: str
) -> dict[str, str]:
    """Uploads the tiny base model and a training file as the platform lays them out; the job's environment
    (without METHOD and HYPERPARAMETERS, which each test sets)."""
    for file in tiny_model.iterdir():
        s3.upload_file(str(file), bucket, f"base-models/tiny-chat/{file.name}")
    s3.upload_file(str(train_file), bucket, f"tenants/{tenant}/files/train.jsonl")
    return {
        "JOB_ID": job,
        "TENANT_ID": tenant,
        "BASE_MODEL_URI": f"s3://{bucket}/base-models/tiny-chat/",
        "TRAINING_FILE_URI": f"s3://{bucket}/tenants/{tenant}/files/train.jsonl",
        "OUTPUT_URI": f"s3://{bucket}/tenants/{tenant}/jobs/{job}/",
    }
