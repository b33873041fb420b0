"""Training data: JSONL lines → encoded examples → length-grouped, padded batches. No torch here."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from .chat_format import (
    IGNORE,
    Encoded,
    Family,
    Tokenizer,
    TokenizerMismatch,
    check_tokenizer,
    encode,
    messages_from_line,
)
from .config import ConfigError


@dataclass(frozen=True)
class Dataset:
    examples: list[Encoded]
    truncated: int
    skipped: int

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)

    @property
    def lengths(self) -> list[int]:
        """Each example's length, for length-grouped batching."""
        return [len(e.input_ids) for e in self.examples]


def load_jsonl(path: Path, tokenizer: Tokenizer, family: Family, max_length: int) -> Dataset:
    """Encodes every line. The validator already refused malformed files; a line that still fails here
    is a bad input error naming its line, never silently skipped. Examples whose answer cannot fit at
    all are counted in `skipped`."""
    try:
        check_tokenizer(tokenizer, family)
    except TokenizerMismatch as error:
        raise ConfigError(str(error)) from error
    examples: list[Encoded] = []
    truncated = skipped = 0
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                messages = messages_from_line(json.loads(line))
            except (ValueError, json.JSONDecodeError) as error:
                raise ConfigError(f"{path.name} line {number}: {error}") from error
            try:
                encoded = encode(tokenizer, family, messages, max_length)
            except ValueError:
                skipped += 1
                continue
            truncated += encoded.truncated
            examples.append(encoded)
    if not examples:
        raise ConfigError(f"{path.name} has no usable examples")
    return Dataset(examples, truncated, skipped)


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar lengths (little padding), in a shuffled, seed-determined order.

    Indices are shuffled, cut into windows of 50 batches, sorted by length inside each window, split into
    batches, and the batches shuffled again: similar lengths together without a fixed long-to-short
    curriculum.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(
    examples: list[Encoded], pad_id: int
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Right-padded ids, labels (-100 on padding) and attention masks."""
    width = max(len(e.input_ids) for e in examples)
    ids, labels, masks = [], [], []
    for e in examples:
        pad = width - len(e.input_ids)
        ids.append(e.input_ids + [pad_id] * pad)
        labels.append(e.labels + [IGNORE] * pad)
        masks.append([1] * len(e.input_ids) + [0] * pad)
    return ids, labels, masks
