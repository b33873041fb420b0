"""Preference (DPO) data without torch: OpenAI's preference lines, their layout per chat family with labels
on the outputs only, the over-length policy (the prompt's head goes first), and the refusal of the other
objective's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ft_trainer.chat_format import IGNORE, Encoded, Family, Message, messages_from_line, special_tokens
from ft_trainer.config import ConfigError
from ft_trainer.data import load_jsonl
from ft_trainer.preferences import (
    Preference,
    encode_pair,
    load_preferences,
    preference_from_line,
)
from ft_trainer.tiny_model import build_tokenizer, byte_tokenizer

FIXTURE = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "datasets" / "preference.jsonl"
EOS: dict[Family, str] = {"chatglm3": "</s>", "glm4": "<|endoftext|>", "chatml": "<|im_end|>"}


def tokenizer_for(family: Family) -> Any:
    return build_tokenizer() if family == "tiny" else byte_tokenizer(special_tokens(family), eos=EOS[family])


def line(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, object]:
    return {
        "input": {"messages": prompt},
        "preferred_output": [{"role": "assistant", "content": chosen}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}],
    }


def render(tokenizer: Any, encoded: Encoded) -> str:
    """The sequence as text, labelled tokens inside «»."""
    out, run, trained = "", [], False
    for token, label in [*zip(encoded.input_ids, encoded.labels), (None, IGNORE)]:
        assert label in (IGNORE, token) or token is None
        if token is None or (label != IGNORE) != trained:
            text = tokenizer.decode(run)
            out += f"«{text}»" if trained and run else text
            run, trained = [], label != IGNORE
        if token is not None:
            run.append(token)
    return out


MULTI_TURN = line(
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ],
    "4",
    "5",
)


@pytest.mark.parametrize(
    ("family", "chosen"),
    [
        (
            "chatglm3",
            "[gMASK]sop<|system|>\nBe brief.<|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?<|assistant|>«\n4</s>»",
        ),
        (
            "glm4",
            "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?"
            "<|assistant|>«\n4<|endoftext|>»",
        ),
        (
            "chatml",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n«4<|im_end|>»\n",
        ),
        (
            "tiny",
            "<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>Hello!<|end|><|user|>2+2?<|end|>"
            "<|assistant|>«4<|end|>»",
        ),
    ],
)
def test_each_output_follows_the_prompt_in_the_family_layout_with_labels_on_the_output_only(
    family: Family, chosen: str
) -> None:
    tokenizer = tokenizer_for(family)
    pair = encode_pair(tokenizer, family, preference_from_line(MULTI_TURN), 512)
    # The prompt's own assistant turn ("Hello!") is context: no labels, as with weight 0.
    assert render(tokenizer, pair.chosen) == chosen
    assert render(tokenizer, pair.rejected) == chosen.replace("4", "5")
    assert not pair.truncated and pair.length == len(pair.chosen.input_ids) + len(pair.rejected.input_ids)


def test_the_preference_fixture_of_the_upload_validator_loads(tmp_path: Path) -> None:
    data = load_preferences(FIXTURE, build_tokenizer(), "tiny", 256)
    assert len(data.examples) == len(FIXTURE.read_text().splitlines())
    assert data.skipped == 0 and data.lengths == [p.length for p in data.examples]
    assert all(p.reference is None for p in data.examples)


def test_over_length_cuts_the_head_of_the_prompt_and_keeps_both_outputs_whole() -> None:
    tokenizer = build_tokenizer()
    long_prompt = line(
        [{"role": "system", "content": "S" * 100}, {"role": "user", "content": "u" * 100 + "QUESTION"}],
        "the chosen answer",
        "no",
    )
    pair = encode_pair(tokenizer, "tiny", preference_from_line(long_prompt), 48)
    assert pair.truncated and len(pair.chosen.input_ids) == 48
    chosen, rejected = render(tokenizer, pair.chosen), render(tokenizer, pair.rejected)
    assert chosen.endswith("QUESTION<|end|><|assistant|>«the chosen answer<|end|>»")
    assert rejected.endswith("QUESTION<|end|><|assistant|>«no<|end|>»")
    # The same prompt tokens in front of both outputs.
    prompt = len(pair.chosen.input_ids) - len(tokenizer.encode("the chosen answer")) - 2
    assert pair.chosen.input_ids[:prompt] == pair.rejected.input_ids[:prompt]


def test_the_glm_prefix_stays_when_the_prompt_head_is_cut() -> None:
    tokenizer = tokenizer_for("chatglm3")
    pair = encode_pair(
        tokenizer,
        "chatglm3",
        preference_from_line(line([{"role": "user", "content": "u" * 100 + "Q"}], "yes", "no")),
        32,
    )
    text = render(tokenizer, pair.chosen)
    assert text.startswith("[gMASK]sop") and text.endswith("Q<|assistant|>«\nyes</s>»")
    assert len(pair.chosen.input_ids) == 32


def test_outputs_longer_than_the_limit_keep_their_beginnings() -> None:
    tokenizer = build_tokenizer()
    pair = encode_pair(
        tokenizer,
        "tiny",
        preference_from_line(line([{"role": "user", "content": "q"}], "A" * 80, "B" * 90)),
        32,
    )
    assert pair.truncated and len(pair.chosen.input_ids) == len(pair.rejected.input_ids) == 32
    assert render(tokenizer, pair.chosen) == "<|assistant|>«" + "A" * 31 + "»"


def test_preference_lines_are_checked_as_far_as_training_needs() -> None:
    assert preference_from_line(line([{"role": "user", "content": "q"}], "a", "b")) == Preference(
        [Message("user", "q", weight=0)], "a", "b"
    )
    bad: list[object] = [
        line([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a", "b"),
        {**line([{"role": "user", "content": "q"}], "a", "b"), "preferred_output": []},
        {
            **line([{"role": "user", "content": "q"}], "a", "b"),
            "non_preferred_output": [{"role": "user", "content": "x"}],
        },
        {"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []},
    ]
    for obj in bad:
        with pytest.raises(ValueError):
            preference_from_line(obj)


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_a_supervised_file_in_a_dpo_job_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    sft = _write(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    with pytest.raises(ConfigError, match=r"chat\.jsonl line 1: a supervised example.*objective dpo"):
        load_preferences(sft, build_tokenizer(), "tiny", 64)
    legacy = _write(tmp_path / "legacy.jsonl", [{"input": "q", "target": "a"}])
    with pytest.raises(ConfigError, match=r"legacy\.jsonl line 1"):
        load_preferences(legacy, build_tokenizer(), "tiny", 64)


def test_a_preference_file_in_a_supervised_job_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"preference\.jsonl line 1: a preference line.*objective dpo"):
        load_jsonl(FIXTURE, build_tokenizer(), "tiny", 64)
    with pytest.raises(ValueError, match="preference line"):
        messages_from_line({"input": {"messages": [{"role": "user", "content": "q"}]}})
