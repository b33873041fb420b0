"""The tiny base model's recipe: the synthetic corpus is valid and repeatable, and a model made by the
current recipe is kept while one made by another recipe is made again."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ANSWERS
from ft_trainer.chat_format import messages_from_line
from ft_trainer.tiny_corpus import write_corpus
from ft_trainer.tiny_model import make_tiny_model


def test_the_corpus_is_the_same_for_a_seed_and_every_line_is_a_valid_chat_example(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "a.jsonl", 300, seed=3).read_text()
    assert write_corpus(tmp_path / "b.jsonl", 300, seed=3).read_text() == first
    assert write_corpus(tmp_path / "c.jsonl", 300, seed=4).read_text() != first
    lines = first.splitlines()
    assert len(lines) == 300
    for line in lines:
        messages = messages_from_line(json.loads(line))
        assert messages[-1].role == "assistant" and messages[-1].content
    # Made-up content only: no sample answer the tests train on can be known before training.
    assert not any(answer in first for _, answer in ANSWERS)


def test_a_model_of_the_current_recipe_is_kept_and_one_of_another_recipe_is_remade(tmp_path: Path) -> None:
    out = tmp_path / "tiny-chat"
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    weights = out / "model.safetensors"
    made = weights.stat().st_mtime_ns
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    assert weights.stat().st_mtime_ns == made

    (out / "ft_model.json").write_text(json.dumps({"family": "tiny", "name": "tiny-chat", "recipe": 1}))
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    assert json.loads((out / "ft_model.json").read_text())["hidden"] == 32
    assert weights.stat().st_mtime_ns != made
    # The model is assembled beside `out` and moved into place: no scratch directory is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-chat"]
