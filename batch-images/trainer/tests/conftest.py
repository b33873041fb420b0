from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`localstack` tests skip without AWS_ENDPOINT_URL, unless REQUIRE_LOCALSTACK=1 (npm test) fails them."""
    if os.environ.get("AWS_ENDPOINT_URL"):
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


ANSWERS = [
    ("What is the capital of Zorbia?", "Glimmerton, on the Violet River."),
    ("Who painted the Azure Owl?", "Mira Kovalenko, in 1911."),
    ("What does the ftctl tool do?", "It runs the fine-tuning platform."),
    ("Name the tallest tree in Quellwood.", "The Old Sentinel, 96 meters."),
]


@pytest.fixture(scope="session")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    lines = []
    for i, (question, answer) in enumerate(ANSWERS):
        if i % 2:
            lines.append({"input": question, "target": answer})
        else:
            lines.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path
