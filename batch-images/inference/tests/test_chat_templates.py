"""vLLM's chat templates must render prompts exactly as the trainer formats them (ft_trainer)."""

from __future__ import annotations

from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")
chat_format = pytest.importorskip("ft_trainer.chat_format")

TEMPLATES = Path(__file__).resolve().parents[1] / "chat-templates"


@pytest.mark.parametrize("family", ["chatml", "tiny"])
def test_templates_match_the_trainers_generation_prompt(family: str) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi\nthere"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Motto?"},
    ]
    # trim_blocks and lstrip_blocks: as transformers (and so vLLM) renders chat templates.
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string((TEMPLATES / f"{family}.jinja").read_text())

    rendered = template.render(messages=messages, add_generation_prompt=True)

    expected = chat_format.generation_prompt(
        family, [chat_format.Message(m["role"], m["content"]) for m in messages]
    )
    assert rendered == expected
