"""vLLM's chat templates must render prompts exactly as the trainer formats them (ft_trainer), for every
chat family the trainer knows: a family without a template would be served in the model's own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

jinja2 = pytest.importorskip("jinja2")
chat_format = pytest.importorskip("ft_trainer.chat_format")

from jinja2.ext import loopcontrols  # noqa: E402 (after the skip: jinja2 may be absent)
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[1] / "chat-templates"

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "one user turn": [{"role": "user", "content": "Hi"}],
    "system and user": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi\nthere"},
    ],
    "developer and user": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ],
    "multi-turn without system": [
        {"role": "user", "content": "Motto of Zorbia?"},
        {"role": "assistant", "content": "Amber otter 10."},
        {"role": "user", "content": "And its emblem?"},
    ],
    "system and multi-turn": [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
        {"role": "user", "content": "Motto?"},
        {"role": "assistant", "content": "Cobalt falcon 11."},
        {"role": "user", "content": "{{ not a template }} {% raw %}"},
    ],
}


def render(family: str, messages: list[dict[str, str]]) -> str:
    """As transformers' apply_chat_template (and so vLLM) compiles a template: an immutable sandbox with
    trim_blocks and lstrip_blocks (transformers/utils/chat_template_utils.py, _compile_jinja_template)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    template = env.from_string((TEMPLATES / f"{family}.jinja").read_text())
    return str(template.render(messages=messages, add_generation_prompt=True))


def trainer_prompt(family: str, messages: list[dict[str, str]]) -> str:
    # The server maps "developer" to "system" before formatting (ft_trainer.serve_protocol), as vLLM does.
    turns = [
        chat_format.Message("system" if m["role"] == "developer" else m["role"], m["content"])
        for m in messages
    ]
    return str(chat_format.generation_prompt(family, turns))


def test_every_chat_family_has_a_template() -> None:
    from ft_contract import load_catalog

    families = [*chat_format.FAMILIES, *load_catalog().families]  # the trainer's, and the catalog's
    missing = [family for family in families if not (TEMPLATES / f"{family}.jinja").is_file()]

    assert missing == []


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("family", chat_format.FAMILIES)
def test_templates_render_the_trainers_generation_prompt(family: str, conversation: str) -> None:
    messages = CONVERSATIONS[conversation]

    assert render(family, messages) == trainer_prompt(family, messages)


@pytest.mark.parametrize("family", chat_format.FAMILIES)
def test_transformers_renders_the_templates_the_same_way(family: str) -> None:
    utils: Any = pytest.importorskip("transformers.utils.chat_template_utils")
    messages = CONVERSATIONS["system and multi-turn"]

    rendered = utils.render_jinja_template(
        [messages], chat_template=(TEMPLATES / f"{family}.jinja").read_text(), add_generation_prompt=True
    )[0][0]

    assert rendered == trainer_prompt(family, messages)
