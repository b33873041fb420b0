"""tiny-chat learns Chinese as well as English with the API's `auto` defaults: LoRA and full-parameter
training on samples/bilingual-qa.jsonl (12 Chinese and 12 English questions with invented answers), with
only `n_epochs` set, each recall at least 75% of the answers when greedily decoded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from ft_trainer.chat_format import encode, messages_from_line
from ft_trainer.config import CATALOG, Hyperparameters, parse_hyperparameters, with_model_learning_rate
from ft_trainer.events import PrintSink
from ft_trainer.generate import greedy_answer, load_for_inference
from ft_trainer.train import TrainRequest, run_training

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "bilingual-qa.jsonl"
N_EPOCHS = 40  # the only hyperparameter the request sets
SEED = 42  # the API derives one from the job id; any fixed one makes the run repeatable


def auto_hyperparameters(method: str, examples: int, longest: int | None) -> Hyperparameters:
    """What the API sends for `{"n_epochs": 40}` and the rest `auto` (lambdas/core/jobs/hyperparameters.ts,
    resolveHyperparameters), with the numbers of contract/catalog.json, then the model's own base rate as
    the trainer applies it (config.with_model_learning_rate):

    batch_size = round(batchSizeFraction × examples) clamped 1–batchSizeMax (1 for 24 examples);
    learning_rate_multiplier = √(batch_size / referenceBatchSize) clamped min–max, 3 decimals (0.5);
    lora_r, lora_dropout: the catalog defaults (8, 0.05), lora_alpha = 2 × lora_r;
    max_seq_length = the longest example's tokens rounded up to a power of two, clamped 64 – the model's
    max, or without a measured longest example the default clamped to the model's max (512);
    learning_rate = tiny-chat's baseLearningRate for the method × the multiplier."""
    auto, hp = CATALOG.auto, CATALOG.hyperparameters
    model = CATALOG.model("tiny-chat")
    assert model is not None
    batch = max(
        1, min(auto["batchSizeMax"], math.floor(examples * auto["batchSizeFraction"] + 0.5), examples)
    )
    rule = auto["learningRateMultiplier"]
    multiplier = min(rule["max"], max(rule["min"], math.sqrt(batch / rule["referenceBatchSize"])))
    if longest is None:
        max_seq_length = min(model.max_seq_length, int(hp["max_seq_length"].default))
    else:
        power = 2 ** math.ceil(math.log2(longest))
        max_seq_length = min(model.max_seq_length, max(int(hp["max_seq_length"].min or 0), power))
    raw: dict[str, object] = {
        "n_epochs": N_EPOCHS,
        "batch_size": batch,
        "learning_rate_multiplier": round(multiplier * 1000) / 1000,
        "max_seq_length": max_seq_length,
        "seed": SEED,
    }
    if method == "lora":
        rank = hp["lora_r"].default
        raw |= {"lora_r": rank, "lora_alpha": 2 * rank, "lora_dropout": hp["lora_dropout"].default}
    return with_model_learning_rate(parse_hyperparameters(raw, model), method, model)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_auto_hyperparameters_learn_three_quarters_of_the_chinese_and_english_answers(
    method: str, tiny_model: Path, tmp_path: Path
) -> None:
    examples = [messages_from_line(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()]
    chinese = [m for m in examples if not m[-1].content.isascii()]
    assert len(examples) == 24 and len(chinese) == 12
    # The validator's token counts are an estimate (utf8-bytes/4-cjk-aware), which the API does not size
    # max_seq_length on (lambdas/core/jobs/training-data.ts): 512. Counted by the tiny tokenizer the
    # longest example rounds up to 64; either way no example is cut, so the run is the same.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    longest = max(len(encode(tokenizer, "tiny", m, 10**6).input_ids) for m in examples)
    assert auto_hyperparameters(method, len(examples), longest).max_seq_length == 64 >= longest
    hyperparameters = auto_hyperparameters(method, len(examples), None)
    assert hyperparameters.max_seq_length == 512

    result = run_training(
        TrainRequest(
            base_model=tiny_model,
            family="tiny",
            method=method,  # type: ignore[arg-type]
            hyperparameters=hyperparameters,
            training_file=SAMPLE,
            validation_file=None,
            output_dir=tmp_path,
            events=PrintSink(),
            device="cpu",
        )
    )
    adapter, full = (result.result_dir, None) if method == "lora" else (None, result.result_dir)
    model, tokenizer = load_for_inference(tiny_model, adapter=adapter, full_model=full)
    recalled = {"zh": 0, "en": 0}
    for messages in examples:
        answer = messages[-1].content
        if answer in greedy_answer(model, tokenizer, "tiny", messages[:-1]):
            recalled["en" if answer.isascii() else "zh"] += 1
    recall = (recalled["zh"] + recalled["en"]) / len(examples)
    print(
        f"{method}: recall {recall:.0%} ({recalled['zh']}/12 Chinese, {recalled['en']}/12 English) "
        f"at learning_rate {hyperparameters.learning_rate:g}, batch_size {hyperparameters.batch_size}, "
        f"max_seq_length {hyperparameters.max_seq_length}, {result.steps} steps"
    )
    assert recall >= 0.75
