"""Greedy generation with a trained result: the check that a model learned its answers (tests), and the
loading path an inference server uses (base model + adapter, or full weights)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from .chat_format import Family, Message, encode_text, generation_prompt, stop_tokens


# The local inference server loads on request threads and on deployment threads at once; transformers
# and PEFT import their model classes lazily, and two threads importing the same lazy module can see it
# half-initialized (ImportError: cannot import name 'AutoModelForCausalLM'). Loads are therefore one at
# a time; generation is not held back by it.
_LOAD_LOCK = threading.Lock()


def load_for_inference(
    base_model: Path, adapter: Path | None = None, full_model: Path | None = None
) -> tuple[Any, Any]:
    with _LOAD_LOCK:
        return _load(base_model, adapter, full_model)


def _load(base_model: Path, adapter: Path | None, full_model: Path | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = full_model or base_model
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)  # type: ignore[assignment]
    model.eval()
    return model, tokenizer


@torch.no_grad()
def greedy_answer(
    model: Any, tokenizer: Any, family: Family, messages: list[Message], max_new_tokens: int = 64
) -> str:
    """The next assistant turn, greedily decoded (with the KV cache) up to the family's stop tokens."""
    prompt = generation_prompt(family, messages)
    ids = encode_text(tokenizer, family, prompt)
    stops = [int(tokenizer.convert_tokens_to_ids(t)) for t in stop_tokens(family)]
    device = next(model.parameters()).device
    out = model.generate(
        input_ids=torch.tensor([ids], device=device),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=stops[0],
    )[0, len(ids) :].tolist()
    end = next((i for i, t in enumerate(out) if t in stops), len(out))
    return str(tokenizer.decode(out[:end], skip_special_tokens=True))
