"""Training data: JSONL lines → encoded examples → length-grouped, padded batches. No torch here."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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

T = TypeVar("T")


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


def encode_lines(
    path: Path,
    tokenizer: Tokenizer,
    family: Family,
    encode_line: Callable[[object], T],
    what: str,
) -> tuple[list[T], int, int]:
    """Encodes every line with `encode_line` (parse and encode one JSON line; ValueError from parsing is
    bad input, from encoding an item that cannot fit). The validator already refused malformed files; a
    line that still fails here is a bad input error naming its line, never silently skipped. Items that
    cannot fit at all are counted as skipped. Returns the items, the truncated and the skipped count."""
    try:
        check_tokenizer(tokenizer, family)
    except TokenizerMismatch as error:
        raise ConfigError(str(error)) from error
    items: list[T] = []
    truncated = skipped = 0
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path.name} line {number}: {error}") from error
            try:
                item = encode_line(raw)
            except _Unfit:
                skipped += 1
                continue
            except ValueError as error:
                raise ConfigError(f"{path.name} line {number}: {error}") from error
            truncated += int(getattr(item, "truncated", False))
            items.append(item)
    if not items:
        raise ConfigError(f"{path.name} has no usable {what}")
    return items, truncated, skipped


class _Unfit(Exception):
    """An item whose trained part cannot fit in `max_length`: skipped, not an error."""


def fitting(encode_item: Callable[[], T]) -> T:
    """`encode_item()`, with its ValueError (nothing trainable fits) marked as an item to skip."""
    try:
        return encode_item()
    except ValueError as error:
        raise _Unfit(str(error)) from error


def load_jsonl(path: Path, tokenizer: Tokenizer, family: Family, max_length: int) -> Dataset:
    """Encodes every supervised line (encode_lines)."""

    def encode_line(raw: object) -> Encoded:
        messages = messages_from_line(raw)
        return fitting(lambda: encode(tokenizer, family, messages, max_length))

    examples, truncated, skipped = encode_lines(path, tokenizer, family, encode_line, "examples")
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
