"""Exact layouts and labels per chat family, multi-turn and legacy lines included."""

from __future__ import annotations

import pytest

from ft_trainer.chat_format import IGNORE, Message, encode, messages_from_line, segments, special_tokens
from ft_trainer.tiny_model import build_tokenizer

CONVO = [
    Message("system", "Be brief."),
    Message("user", "Hi"),
    Message("assistant", "Hello!"),
    Message("user", "2+2?"),
    Message("assistant", "4"),
]


def layout(family: str, messages: list[Message]) -> list[tuple[str, bool]]:
    return [(s.text, s.trainable) for s in segments(family, messages)]  # type: ignore[arg-type]


def test_chatml_layout_trains_assistant_content_and_im_end_only() -> None:
    assert layout("chatml", CONVO) == [
        ("<|im_start|>system\nBe brief.<|im_end|>\n", False),
        ("<|im_start|>user\nHi<|im_end|>\n", False),
        ("<|im_start|>assistant\n", False),
        ("Hello!<|im_end|>", True),
        ("\n", False),
        ("<|im_start|>user\n2+2?<|im_end|>\n", False),
        ("<|im_start|>assistant\n", False),
        ("4<|im_end|>", True),
        ("\n", False),
    ]


def test_chatglm3_layout_uses_gmask_sop_and_trains_the_next_role_token_or_eos() -> None:
    assert layout("chatglm3", CONVO) == [
        ("[gMASK]sop", False),
        ("<|system|>\nBe brief.", False),
        ("<|user|>\nHi", False),
        ("<|assistant|>", False),
        ("\nHello!<|user|>", True),
        ("\n2+2?", False),
        ("<|assistant|>", False),
        ("\n4</s>", True),
    ]


def test_glm4_layout_ends_with_endoftext() -> None:
    assert layout("glm4", CONVO[1:3]) == [
        ("[gMASK]<sop>", False),
        ("<|user|>\nHi", False),
        ("<|assistant|>", False),
        ("\nHello!<|endoftext|>", True),
    ]


def test_tiny_layout() -> None:
    assert layout("tiny", CONVO[:3]) == [
        ("<|system|>Be brief.<|end|>", False),
        ("<|user|>Hi<|end|>", False),
        ("<|assistant|>", False),
        ("Hello!<|end|>", True),
    ]


def test_an_assistant_turn_with_weight_0_is_context_only() -> None:
    convo = [
        Message("user", "a"),
        Message("assistant", "b", weight=0),
        Message("user", "c"),
        Message("assistant", "d"),
    ]
    assert [s.trainable for s in segments("tiny", convo)] == [False, False, False, False, False, True]


def test_legacy_lines_become_one_user_and_one_assistant_turn() -> None:
    assert messages_from_line({"input": "q", "target": "a"}) == [
        Message("user", "q"),
        Message("assistant", "a"),
    ]
    with pytest.raises(ValueError):
        messages_from_line({"prompt": "q"})


def test_labels_cover_exactly_the_assistant_text_and_end_token_in_one_pass() -> None:
    tokenizer = build_tokenizer()
    enc = encode(tokenizer, "tiny", CONVO, max_length=512)
    assert len(enc.input_ids) == len(enc.labels) and not enc.truncated
    trained = [t for t, label in zip(enc.input_ids, enc.labels) if label != IGNORE]
    assert tokenizer.decode(trained) == "Hello!<|end|>4<|end|>"
    assert tokenizer.decode(enc.input_ids) == "".join(s.text for s in segments("tiny", CONVO))
    for token in special_tokens("tiny"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1


def test_over_length_drops_earlier_turns_first_and_keeps_the_answer_end() -> None:
    tokenizer = build_tokenizer()
    long_first = [
        Message("system", "S"),
        Message("user", "x" * 200),
        Message("assistant", "y" * 200),
        Message("user", "q"),
        Message("assistant", "the end"),
    ]
    enc = encode(tokenizer, "tiny", long_first, max_length=64)
    assert enc.truncated and len(enc.input_ids) <= 64
    text = tokenizer.decode(enc.input_ids)
    assert text.startswith("<|system|>S<|end|><|user|>q") and text.endswith("the end<|end|>")


def test_an_answer_longer_than_the_limit_keeps_its_last_tokens() -> None:
    tokenizer = build_tokenizer()
    enc = encode(
        tokenizer, "tiny", [Message("user", "q"), Message("assistant", "a" * 100 + "END")], max_length=32
    )
    assert len(enc.input_ids) == 32 and tokenizer.decode(enc.input_ids).endswith("END<|end|>")
