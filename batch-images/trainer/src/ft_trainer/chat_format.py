"""Chat formatting per model family, as token segments with a trainable flag.

Pure Python: no torch. A conversation becomes a list of segments (text, trainable); special tokens are
written as their text and must be registered as special tokens in the tokenizer, so they encode to one
id each. Only assistant content and the token that ends an assistant turn are trainable, so the model
learns both the answer and when to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
Family = Literal["chatglm3", "glm4", "chatml", "tiny"]
FAMILIES: tuple[Family, ...] = ("chatglm3", "glm4", "chatml", "tiny")


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


def messages_from_line(obj: dict[str, object]) -> list[Message]:
    """Both dataset formats: `messages`, or legacy `input`/`target` (one user and one assistant turn)."""
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
        return out
    if "input" in obj and "target" in obj:
        return [Message("user", str(obj["input"])), Message("assistant", str(obj["target"]))]
    raise ValueError("a line needs 'messages' or 'input' and 'target'")


def segments(family: Family, messages: list[Message]) -> list[Segment]:
    """The conversation in the family's chat template, split at trainable boundaries."""
    if family == "chatml":
        return _chatml(messages)
    if family == "tiny":
        return _tiny(messages)
    if family in ("chatglm3", "glm4"):
        return _glm(family, messages)
    raise ValueError(f"unknown chat family {family!r}")


def generation_prompt(family: Family, messages: list[Message]) -> str:
    """The prompt that asks the model for the next assistant turn (inference, and tests)."""
    text = "".join(s.text for s in segments(family, [*messages, Message("assistant", "")]))
    end = end_of_turn(family, last=True)
    return text[: len(text) - len(end)] if text.endswith(end) else text


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
    out: list[Segment] = []
    for m in messages:
        if m.role == "assistant":
            out.append(Segment("<|im_start|>assistant\n", False))
            out.append(Segment(m.content + "<|im_end|>", m.weight == 1))
            out.append(Segment("\n", False))
        else:
            out.append(Segment(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n", False))
    return out


def _tiny(messages: list[Message]) -> list[Segment]:
    out: list[Segment] = []
    for m in messages:
        if m.role == "assistant":
            out.append(Segment("<|assistant|>", False))
            out.append(Segment(m.content + "<|end|>", m.weight == 1))
        else:
            out.append(Segment(f"<|{m.role}|>{m.content}<|end|>", False))
    return out


def _glm(family: Family, messages: list[Message]) -> list[Segment]:
    out: list[Segment] = [Segment("[gMASK]sop" if family == "chatglm3" else "[gMASK]<sop>", False)]
    last_assistant = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    for i, m in enumerate(messages):
        if m.role == "assistant":
            out.append(Segment("<|assistant|>", False))
            # Before a later turn, that turn's `<|user|>` ends the answer: it is trained here, once.
            end = end_of_turn(family, last=i == last_assistant)
            out.append(Segment("\n" + m.content + end, m.weight == 1))
        else:
            # A user turn right after an assistant turn already got its role token from that turn.
            prev = messages[i - 1] if i > 0 else None
            skip_role = m.role == "user" and prev is not None and prev.role == "assistant"
            role = "" if skip_role else f"<|{m.role}|>"
            out.append(Segment(f"{role}\n{m.content}", False))
    return out


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


IGNORE = -100


def encode(tokenizer: Tokenizer, family: Family, messages: list[Message], max_length: int) -> Encoded:
    """Token ids and labels (-100 where not trained), fitting `max_length`.

    Over-length policy, never dropping the end of the final answer: first whole earlier turns are
    dropped (the system message is kept), then the head of what remains is cut; if the final answer
    alone is longer than `max_length`, its last `max_length` tokens are kept. An example whose kept part
    has no trainable token left raises ValueError.
    """
    ids, labels = _encode_segments(tokenizer, segments(family, messages))
    truncated = False
    convo = list(messages)
    system = [m for m in convo[:1] if m.role == "system"]
    body = convo[len(system) :]
    # Drop earliest user/assistant pairs while more than the final pair remains.
    while len(ids) > max_length and len(body) > 2:
        body = body[2:]
        truncated = True
        ids, labels = _encode_segments(tokenizer, segments(family, system + body))
    if len(ids) > max_length:
        truncated = True
        ids, labels = ids[-max_length:], labels[-max_length:]
    if all(label == IGNORE for label in labels):
        raise ValueError("no trainable tokens left after truncation")
    return Encoded(ids, labels, truncated)


def _encode_segments(tokenizer: Tokenizer, segs: list[Segment]) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    for seg in segs:
        if not seg.text:
            continue
        piece = tokenizer.encode(seg.text, add_special_tokens=False)
        ids.extend(piece)
        labels.extend(piece if seg.trainable else [IGNORE] * len(piece))
    return ids, labels
