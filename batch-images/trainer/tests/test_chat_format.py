"""Exact token and label layouts per chat family, multi-turn and legacy lines included.

The ChatGLM3, GLM-4 and ChatML tokenizers are offline stand-ins: byte-level text plus the family's
special tokens as single ids (tiny_model.byte_tokenizer). What is checked is the layout the trainer
builds: where each special token sits, and which tokens carry labels.
"""

from __future__ import annotations

from typing import Any

import pytest

from ft_trainer.chat_format import (
    IGNORE,
    Family,
    Message,
    encode,
    generation_prompt,
    messages_from_line,
    segments,
    special_tokens,
)
from ft_trainer.tiny_model import build_tokenizer, byte_tokenizer

EOS: dict[Family, str] = {"chatglm3": "</s>", "glm4": "<|endoftext|>", "chatml": "<|im_end|>"}


def tokenizer_for(family: Family) -> Any:
    return build_tokenizer() if family == "tiny" else byte_tokenizer(special_tokens(family), eos=EOS[family])


CONVO = [
    Message("system", "Be brief."),
    Message("user", "Hi"),
    Message("assistant", "Hello!"),
    Message("user", "2+2?"),
    Message("assistant", "4"),
]


def render(family: Family, messages: list[Message], max_length: int = 512) -> str:
    """The encoded example as text, trained tokens inside «»; checks labels equal ids where trained."""
    tokenizer = tokenizer_for(family)
    enc = encode(tokenizer, family, messages, max_length)
    assert len(enc.input_ids) == len(enc.labels) <= max_length
    out, run, trained = "", [], False
    for token, label in [*zip(enc.input_ids, enc.labels), (None, IGNORE)]:
        assert label in (IGNORE, token) or token is None
        if token is None or (label != IGNORE) != trained:
            text = tokenizer.decode(run)
            out += f"«{text}»" if trained and run else text
            run, trained = [], label != IGNORE
        if token is not None:
            run.append(token)
    return out


def specials_in(family: Family, messages: list[Message]) -> list[str]:
    """The special tokens of the encoded example, in order: each must be exactly one id."""
    tokenizer = tokenizer_for(family)
    ids = encode(tokenizer, family, messages, 512).input_ids
    return [tokenizer.convert_ids_to_tokens(i) for i in ids if i >= 256]


def test_chatglm3_uses_gmask_sop_role_tokens_and_trains_newline_answer_and_the_next_role_or_eos() -> None:
    assert render("chatglm3", CONVO) == (
        "[gMASK]sop<|system|>\nBe brief.<|user|>\nHi<|assistant|>«\nHello!<|user|>»\n2+2?<|assistant|>«\n4</s>»"
    )
    assert specials_in("chatglm3", CONVO) == [
        "[gMASK]",
        "sop",
        "<|system|>",
        "<|user|>",
        "<|assistant|>",
        "<|user|>",
        "<|assistant|>",
        "</s>",
    ]


def test_glm4_uses_gmask_angle_sop_and_ends_the_last_answer_with_endoftext() -> None:
    assert render("glm4", CONVO) == (
        "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi<|assistant|>«\nHello!<|user|>»"
        "\n2+2?<|assistant|>«\n4<|endoftext|>»"
    )
    assert specials_in("glm4", CONVO)[:2] == ["[gMASK]", "<sop>"]


def test_chatml_trains_assistant_content_and_im_end_only() -> None:
    assert render("chatml", CONVO) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n«Hello!<|im_end|>»\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n«4<|im_end|>»\n"
    )
    assert specials_in("chatml", CONVO).count("<|im_start|>") == 5


def test_tiny_layout() -> None:
    assert render("tiny", CONVO) == (
        "<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>«Hello!<|end|>»"
        "<|user|>2+2?<|end|><|assistant|>«4<|end|>»"
    )


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("chatglm3", "[gMASK]sop<|user|>\nq?<|assistant|>«\na.</s>»"),
        ("glm4", "[gMASK]<sop><|user|>\nq?<|assistant|>«\na.<|endoftext|>»"),
        ("chatml", "<|im_start|>user\nq?<|im_end|>\n<|im_start|>assistant\n«a.<|im_end|>»\n"),
        ("tiny", "<|user|>q?<|end|><|assistant|>«a.<|end|>»"),
    ],
)
def test_a_legacy_line_is_one_user_and_one_assistant_turn(family: Family, expected: str) -> None:
    assert render(family, messages_from_line({"input": "q?", "target": "a."})) == expected


def test_legacy_and_bad_lines() -> None:
    assert messages_from_line({"input": "q", "target": "a"}) == [
        Message("user", "q"),
        Message("assistant", "a"),
    ]
    for bad in ({"prompt": "q"}, {"messages": [{"role": "user", "content": "q"}]}, ["x"]):
        with pytest.raises(ValueError):
            messages_from_line(bad)


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("chatglm3", "[gMASK]sop<|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?<|assistant|>"),
        ("glm4", "[gMASK]<sop><|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?<|assistant|>"),
        (
            "chatml",
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
        ),
        ("tiny", "<|user|>Hi<|end|><|assistant|>Hello!<|end|><|user|>2+2?<|end|><|assistant|>"),
    ],
)
def test_the_generation_prompt_matches_the_trained_layout(family: Family, expected: str) -> None:
    assert generation_prompt(family, CONVO[1:4]) == expected


def test_an_assistant_turn_with_weight_0_is_context_only() -> None:
    convo = [
        Message("user", "a"),
        Message("assistant", "b", weight=0),
        Message("user", "c"),
        Message("assistant", "d"),
    ]
    assert (
        render("tiny", convo)
        == "<|user|>a<|end|><|assistant|>b<|end|><|user|>c<|end|><|assistant|>«d<|end|>»"
    )
    assert [s.trainable for s in segments("chatglm3", convo)].count(True) == 3


def test_every_family_special_token_is_one_id() -> None:
    for family in ("chatglm3", "glm4", "chatml", "tiny"):
        tokenizer = tokenizer_for(family)  # type: ignore[arg-type]
        for token in special_tokens(family):  # type: ignore[arg-type]
            assert len(tokenizer.encode(token, add_special_tokens=False)) == 1


def test_a_tokenizer_without_the_family_tokens_is_refused() -> None:
    from ft_trainer.chat_format import TokenizerMismatch

    with pytest.raises(TokenizerMismatch, match="gMASK"):
        encode(build_tokenizer(), "chatglm3", CONVO, 512)


def test_over_length_drops_earlier_exchanges_first_and_keeps_the_answer_end() -> None:
    long_first = [
        Message("system", "S"),
        Message("user", "x" * 200),
        Message("assistant", "y" * 200),
        Message("user", "q"),
        Message("assistant", "the end"),
    ]
    assert render("tiny", long_first, max_length=64) == (
        "<|system|>S<|end|><|user|>q<|end|><|assistant|>«the end<|end|>»"
    )


def test_then_the_head_is_cut_after_the_fixed_prefix() -> None:
    convo = [Message("user", "u" * 100 + "QUESTION"), Message("assistant", "answer")]
    text = render("chatglm3", convo, max_length=32)
    assert text.startswith("[gMASK]sop") and text.endswith("QUESTION<|assistant|>«\nanswer</s>»")
    tokenizer = tokenizer_for("chatglm3")
    assert len(encode(tokenizer, "chatglm3", convo, 32).input_ids) == 32


def test_an_answer_longer_than_the_limit_keeps_its_last_tokens() -> None:
    enc = encode(
        build_tokenizer(), "tiny", [Message("user", "q"), Message("assistant", "a" * 100 + "END")], 32
    )
    assert enc.truncated and len(enc.input_ids) == 32
    assert build_tokenizer().decode(enc.input_ids).endswith("END<|end|>")
    assert enc.labels[0] != IGNORE  # all of it is answer


def test_an_example_with_nothing_left_to_train_is_refused() -> None:
    with pytest.raises(ValueError, match="no trainable"):
        encode(build_tokenizer(), "tiny", [Message("user", "q"), Message("assistant", "a", weight=0)], 64)
