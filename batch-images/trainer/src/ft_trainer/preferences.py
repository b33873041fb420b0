"""Preference data for DPO: OpenAI's preference lines → encoded (chosen, rejected) pairs. No torch here.

A line: `{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content": ...}],
"non_preferred_output": [{"role": "assistant", "content": ...}]}`. The prompt is the input messages in the
family's chat template (chat_format.py); each output is that prompt followed by its assistant turn. Labels
sit only on the output: its content and the token that ends the turn, as supervised training trains an
answer (GLM's `\\n` after `<|assistant|>` too). Assistant turns inside the prompt are context only.

Over-length policy (`max_seq_length`, for each output with the prompt): the head of the prompt is cut
first (after the family's fixed prefix, `[gMASK]sop`), the outputs are kept whole; only when the longer
output alone does not fit are both outputs cut to their first tokens (the start of an answer, where the
two usually differ, is what the log-probability ratio compares; its end-of-turn token is then lost).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .chat_format import (
    IGNORE,
    Encoded,
    Family,
    Message,
    Tokenizer,
    encode_messages,
    encode_text,
    is_preference_line,
    prefix,
)
from .data import encode_lines, fitting


@dataclass(frozen=True)
class Preference:
    """One preference line: the conversation so far (ending with the user's turn) and two answers to it."""

    prompt: list[Message]
    chosen: str
    rejected: str


def preference_from_line(obj: object) -> Preference:
    """A preference line, checked as far as the trainer needs (the upload validator checks the rest)."""
    if not is_preference_line(obj):
        raise ValueError(
            "a supervised example (messages, or input/target) where preference tuning (objective dpo) "
            "needs preference lines: input, preferred_output, non_preferred_output"
        )
    assert isinstance(obj, dict)
    raw_input = obj.get("input")
    raw = raw_input.get("messages") if isinstance(raw_input, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ValueError("input.messages must be a non-empty list")
    prompt: list[Message] = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"bad message in input.messages: {m!r}")
        if not isinstance(m.get("content"), str):
            raise ValueError("input.messages: content must be a string")
        # Weight 0: an assistant turn of the prompt is context, never trained.
        prompt.append(Message(m["role"], m["content"], weight=0))
    if prompt[-1].role != "user":
        raise ValueError("input.messages must end with the user turn the outputs answer")
    return Preference(prompt, _output(obj, "preferred_output"), _output(obj, "non_preferred_output"))


def _output(obj: dict[str, object], key: str) -> str:
    value = obj.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 1
        or not isinstance(value[0], dict)
        or value[0].get("role") != "assistant"
        or not isinstance(value[0].get("content"), str)
    ):
        raise ValueError(f"{key} must be exactly one assistant message with string content")
    return str(value[0]["content"])


@dataclass(frozen=True)
class PreferencePair:
    """An encoded pair: prompt + chosen output, prompt + rejected output (the same prompt tokens)."""

    chosen: Encoded
    rejected: Encoded
    truncated: bool
    # The reference model's summed log-probabilities of the chosen and the rejected output (their
    # labelled tokens), set once at setup (dpo.with_reference). Kept on the pair so that any subset
    # (a validation split, the periodic sample) keeps its own.
    reference: tuple[float, float] | None = None

    @property
    def length(self) -> int:
        """What a pair costs a batch: both sequences (length-grouped batching sorts by it)."""
        return len(self.chosen.input_ids) + len(self.rejected.input_ids)


def encode_pair(
    tokenizer: Tokenizer, family: Family, preference: Preference, max_length: int
) -> PreferencePair:
    """The pair's ids and labels, each sequence at most `max_length` (the policy in the module docstring).
    Raises ValueError when an output is left with no labelled token (the loader counts it as skipped)."""
    prompt_ids, _ = encode_messages(tokenizer, family, preference.prompt)
    outputs = []
    for answer in (preference.chosen, preference.rejected):
        ids, labels = encode_messages(tokenizer, family, [*preference.prompt, Message("assistant", answer)])
        # Every template renders the messages one after another: the prompt is a prefix of each output.
        if ids[: len(prompt_ids)] != prompt_ids:
            raise ValueError(f"the {family} template does not extend the prompt with the output")
        outputs.append((ids[len(prompt_ids) :], labels[len(prompt_ids) :]))
    longest = max(len(ids) for ids, _ in outputs)
    truncated = len(prompt_ids) + longest > max_length
    if truncated:
        head = encode_text(tokenizer, family, prefix(family))
        head = head if len(head) < max_length // 2 else []
        room = max_length - len(head) - longest
        if room > 0:
            # The prompt loses its beginning (after the family's prefix): system message, early turns.
            prompt_ids = head + prompt_ids[len(head) :][-room:]
        else:
            prompt_ids = head
            keep = max_length - len(head)
            outputs = [(ids[:keep], labels[:keep]) for ids, labels in outputs]
    chosen, rejected = (
        Encoded(prompt_ids + ids, [IGNORE] * len(prompt_ids) + labels, truncated) for ids, labels in outputs
    )
    if chosen.trained_tokens == 0 or rejected.trained_tokens == 0:
        raise ValueError("an output has no trainable tokens left after truncation")
    return PreferencePair(chosen, rejected, truncated)


@dataclass(frozen=True)
class PreferenceDataset:
    """The encoded pairs of a preference file; shaped like data.Dataset (`examples`, `truncated`,
    `skipped`), so a validation split or sample of it works the same way."""

    examples: list[PreferencePair]
    truncated: int
    skipped: int

    @property
    def tokens(self) -> int:
        return sum(p.length for p in self.examples)

    @property
    def lengths(self) -> list[int]:
        return [p.length for p in self.examples]

    def with_reference(self, values: list[tuple[float, float]]) -> PreferenceDataset:
        """The same pairs, each with its reference log-probabilities (in order)."""
        if len(values) != len(self.examples):
            raise ValueError(f"{len(values)} reference values for {len(self.examples)} pairs")
        return replace(self, examples=[replace(p, reference=v) for p, v in zip(self.examples, values)])


def load_preferences(path: Path, tokenizer: Tokenizer, family: Family, max_length: int) -> PreferenceDataset:
    """Encodes every line of a preference file, as data.load_jsonl does a supervised one: a line that
    fails (a supervised line among them: the wrong file for a DPO job) is bad input naming the file and
    the line; a pair that cannot fit at all is counted in `skipped`."""

    def encode_line(raw: object) -> PreferencePair:
        preference = preference_from_line(raw)
        return fitting(lambda: encode_pair(tokenizer, family, preference, max_length))

    pairs, truncated, skipped = encode_lines(path, tokenizer, family, encode_line, "preference pairs")
    return PreferenceDataset(pairs, truncated, skipped)
