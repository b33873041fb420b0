"""Greedy generation with a trained result: the check that a model learned its answers (tests), and the
loading path an inference server uses (base model + adapter, or full weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .chat_format import Family, Message, generation_prompt, stop_tokens


def load_for_inference(
    base_model: Path, adapter: Path | None = None, full_model: Path | None = None
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = full_model or base_model
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer


@torch.no_grad()
def greedy_answer(
    model: Any, tokenizer: Any, family: Family, messages: list[Message], max_new_tokens: int = 64
) -> str:
    prompt = generation_prompt(family, messages)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    stops = {tokenizer.convert_tokens_to_ids(t) for t in stop_tokens(family)}
    out: list[int] = []
    device = next(model.parameters()).device
    for _ in range(max_new_tokens):
        logits = model(input_ids=torch.tensor([ids + out], device=device)).logits[0, -1]
        token = int(logits.argmax())
        if token in stops:
            break
        out.append(token)
    return tokenizer.decode(out, skip_special_tokens=True)
