"""Chat formatting per model family, as segments with a trainable flag, and their token ids and labels.

Pure Python: no torch. A conversation becomes a list of segments (text, trainable). Each segment is
encoded on its own, and the family's special tokens inside it (`<|user|>`, `<|im_end|>`, ...) are looked
up by name rather than left to the tokenizer's text encoder: ChatGLM3's tokenizer, for one, does not
parse special tokens out of text. Only assistant content and the token that ends an assistant turn are
trainable, so the model learns both the answer and when to stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
Family = Literal["chatglm3", "glm4", "chatml", "tiny"]
FAMILIES: tuple[Family, ...] = ("chatglm3", "glm4", "chatml", "tiny")
IGNORE = -100


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    # OpenAI's per-message weight: 0 keeps an assistant turn as context without training on it.
    weight: int = 1


@dataclass(frozen=True)
class Segment:
    text: str
    trainable: bool


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...
    def convert_tokens_to_ids(self, tokens: str) -> int | None: ...


def is_preference_line(obj: object) -> bool:
    """OpenAI's preference (DPO) line, as the upload validator tells it: either output key, or an object
    `input` (a legacy line's `input` is a string)."""
    return isinstance(obj, dict) and (
        "preferred_output" in obj or "non_preferred_output" in obj or isinstance(obj.get("input"), dict)
    )


def messages_from_line(obj: object) -> list[Message]:
    """Both dataset formats: `messages`, or legacy `input`/`target` (one user and one assistant turn)."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    if is_preference_line(obj):
        raise ValueError(
            "a preference line (input, preferred_output, non_preferred_output) is for preference tuning "
            "(objective dpo), not for supervised training"
        )
    if "messages" in obj:
        raw = obj["messages"]
        if not isinstance(raw, list):
            raise ValueError("messages must be a list")
        out: list[Message] = []
        for m in raw:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise ValueError(f"bad message: {m!r}")
            content = m.get("content")
            if not isinstance(content, str):
                raise ValueError("content must be a string")
            weight = m.get("weight", 1)
            out.append(Message(m["role"], content, 0 if weight == 0 else 1))
        if not any(m.role == "assistant" for m in out):
            raise ValueError("a conversation needs at least one assistant turn")
        return out
    if "input" in obj and "target" in obj:
        return [Message("user", str(obj["input"])), Message("assistant", str(obj["target"]))]
    raise ValueError("a line needs 'messages' or 'input' and 'target'")


# --- templates ---------------------------------------------------------------------------------------


def segments(family: Family, messages: list[Message]) -> list[Segment]:
    """The conversation in the family's chat template, split at trainable boundaries."""
    if family == "chatml":
        return _chatml(messages)
    if family == "tiny":
        return _tiny(messages)
    if family in ("chatglm3", "glm4"):
        return _glm(family, messages)
    raise ValueError(f"unknown chat family {family!r}")


def prefix(family: Family) -> str:
    """What every sequence starts with; kept when the head of an over-long example is cut."""
    return {"chatglm3": "[gMASK]sop", "glm4": "[gMASK]<sop>"}.get(family, "")


def generation_prompt(family: Family, messages: list[Message]) -> str:
    """The prompt that asks the model for the next assistant turn (inference, and tests)."""
    body = "".join(s.text for s in segments(family, messages))
    if family == "chatml":
        return body + "<|im_start|>assistant\n"
    if family == "tiny":
        return body + "<|assistant|>"
    # GLM: a user turn after an assistant turn got its role token from that turn's end; the prompt
    # ends with the assistant role token (the "\n" after it is the model's to write, as trained).
    return (body if body else prefix(family)) + "<|assistant|>"


def end_of_turn(family: Family, last: bool) -> str:
    """The token that closes an assistant turn: what the model must learn to emit to stop."""
    if family == "chatml":
        return "<|im_end|>"
    if family == "tiny":
        return "<|end|>"
    if family == "chatglm3":
        # ChatGLM3 stops at the next role token or at its end-of-sequence token.
        return "</s>" if last else "<|user|>"
    return "<|endoftext|>" if last else "<|user|>"


def stop_tokens(family: Family) -> list[str]:
    return {
        "chatml": ["<|im_end|>", "<|endoftext|>"],
        "tiny": ["<|end|>"],
        "chatglm3": ["</s>", "<|user|>", "<|observation|>"],
        "glm4": ["<|endoftext|>", "<|user|>", "<|observation|>"],
    }[family]


def special_tokens(family: Family) -> list[str]:
    """The tokens a family's tokenizer must know as single ids."""
    return {
        "chatml": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        "tiny": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"],
        "chatglm3": ["[gMASK]", "sop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>", "</s>"],
        "glm4": [
            "[gMASK]",
            "<sop>",
            "<|system|>",
            "<|user|>",
            "<|assistant|>",
            "<|observation|>",
            "<|endoftext|>",
        ],
    }[family]


def _chatml(messages: list[Message]) -> list[Segment]:
    # Qwen's template without its default system prompt: the tenant's data decides the system turn.
    out: list[Segment] = []
    for m in messages:
        if m.role == "assistant":
            out.append(Segment("<|im_start|>assistant\n", False))
            out.append(Segment(m.content, m.weight == 1))
            out.append(Segment("<|im_end|>", m.weight == 1))
            out.append(Segment("\n", False))
        else:
            out.append(Segment(f"<|im_start|>{m.role}\n", False))
            out.append(Segment(m.content, False))
            out.append(Segment("<|im_end|>\n", False))
    return out


def _tiny(messages: list[Message]) -> list[Segment]:
    out: list[Segment] = []
    for m in messages:
        if m.role == "assistant":
            out.append(Segment("<|assistant|>", False))
            out.append(Segment(m.content, m.weight == 1))
            out.append(Segment("<|end|>", m.weight == 1))
        else:
            out.append(Segment(f"<|{m.role}|>", False))
            out.append(Segment(m.content, False))
            out.append(Segment("<|end|>", False))
    return out


def _glm(family: Family, messages: list[Message]) -> list[Segment]:
    # As THUDM's build_single_message: role token, encode("\n"), encode(content), each on its own.
    out: list[Segment] = [Segment(prefix(family), False)]
    for i, m in enumerate(messages):
        if m.role == "assistant":
            trained = m.weight == 1
            out.append(Segment("<|assistant|>", False))
            out.append(Segment("\n", trained))
            out.append(Segment(m.content, trained))
            # Before a later turn, that turn's `<|user|>` ends the answer: it is trained here, once.
            out.append(Segment(end_of_turn(family, last=i == len(messages) - 1), trained))
        else:
            # A user turn right after an assistant turn already got its role token from that turn.
            prev = messages[i - 1] if i > 0 else None
            if not (m.role == "user" and prev is not None and prev.role == "assistant"):
                out.append(Segment(f"<|{m.role}|>", False))
            out.append(Segment("\n", False))
            out.append(Segment(m.content, False))
    return out


# --- tokens and labels -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def trained_tokens(self) -> int:
        """Tokens that carry a loss (the first token never does: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


class TokenizerMismatch(ValueError):
    """The tokenizer lacks a special token of the chat family: wrong MODEL_FAMILY or base model."""


def check_tokenizer(tokenizer: Tokenizer, family: Family) -> None:
    for token in special_tokens(family):
        _special_id(tokenizer, token, family)


def encode(tokenizer: Tokenizer, family: Family, messages: list[Message], max_length: int) -> Encoded:
    """Token ids and labels (-100 where not trained), fitting `max_length`.

    Over-length policy, never dropping the end of the final answer:
    1. whole earlier user/assistant exchanges are dropped, oldest first (the system message stays),
       while more than the final exchange remains;
    2. then the head of what remains is cut, after the family's fixed prefix (`[gMASK]sop`): the
       system message and the final question lose their beginning first;
    3. if the final answer alone is longer, only its last tokens (and the end-of-turn token) remain.
    An example left with no trainable token (possible only when the final turn has weight 0) raises
    ValueError; the data loader counts such examples as skipped.
    """
    ids, labels = _encode_segments(tokenizer, family, segments(family, messages))
    truncated = False
    system = [m for m in messages[:1] if m.role == "system"]
    body = list(messages[len(system) :])
    while len(ids) > max_length and len(body) > 2:
        body = body[2:]
        truncated = True
        ids, labels = _encode_segments(tokenizer, family, segments(family, system + body))
    if len(ids) > max_length:
        truncated = True
        keep = len(encode_text(tokenizer, family, prefix(family)))
        keep = keep if keep < max_length // 2 else 0
        tail = max_length - keep
        ids, labels = ids[:keep] + ids[-tail:], labels[:keep] + labels[-tail:]
    encoded = Encoded(ids, labels, truncated)
    if encoded.trained_tokens == 0:
        raise ValueError("no trainable tokens left after truncation")
    return encoded


def encode_messages(
    tokenizer: Tokenizer, family: Family, messages: list[Message]
) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation in the family's template, untruncated (preferences.py
    builds DPO's prompt and outputs from it)."""
    return _encode_segments(tokenizer, family, segments(family, messages))


_SPLITTERS: dict[Family, re.Pattern[str]] = {
    family: re.compile(
        "(" + "|".join(re.escape(t) for t in sorted(special_tokens(family), key=len, reverse=True)) + ")"
    )
    for family in FAMILIES
}


def _special_id(tokenizer: Tokenizer, token: str, family: Family) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if token_id is None or (unk is not None and token_id == unk):
        raise TokenizerMismatch(
            f"the tokenizer has no {token!r} token: is the model family {family!r} right?"
        )
    return int(token_id)


def encode_text(tokenizer: Tokenizer, family: Family, text: str) -> list[int]:
    """Text with the family's special tokens in it (a prompt) to ids, special tokens looked up by name."""
    ids: list[int] = []
    for i, piece in enumerate(_SPLITTERS[family].split(text)):
        if not piece:
            continue
        if i % 2:  # the split pattern's group: a special token
            ids.append(_special_id(tokenizer, piece, family))
        else:
            ids.extend(tokenizer.encode(piece, add_special_tokens=False))
    return ids


def _encode_segments(
    tokenizer: Tokenizer, family: Family, segs: list[Segment]
) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    for seg in segs:
        piece = encode_text(tokenizer, family, seg.text)
        ids.extend(piece)
        labels.extend(piece if seg.trainable else [IGNORE] * len(piece))
    return ids, labels
