"""Makes the tiny base model of the local platform and the tests: no downloads, deterministic.

A byte-level tokenizer (256 byte tokens plus the `tiny` chat family's special tokens) and a small
randomly initialised Llama-architecture causal LM, saved with `save_pretrained`. Small enough to train
on a laptop CPU in seconds, large enough to memorise a few dozen short answers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .chat_format import special_tokens


def byte_tokenizer(specials: list[str], eos: str, pad: str | None = None) -> Any:
    """A byte-level tokenizer (one id per UTF-8 byte, no merges) with `specials` as single ids.

    The tiny model uses it with its own chat tokens; the tests also use it as an offline stand-in for
    the ChatGLM3, GLM-4 and ChatML tokenizers (same special tokens, bytes for the text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=eos,
        pad_token=pad,
        additional_special_tokens=[t for t in specials if t not in (eos, pad)],
    )
    tokenizer.model_max_length = 512
    return tokenizer


def build_tokenizer() -> Any:
    return byte_tokenizer(special_tokens("tiny"), eos="<|end|>", pad="<|pad|>")


def build_model(vocab_size: int, hidden: int, layers: int, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    model = LlamaForCausalLM(config)
    # Larger (tied) embeddings than the default 0.02: the output logits are normalised hidden states
    # times these rows, and at 0.02 their range is too small for an adapter alone to make a token
    # likely. A pretrained model has no such problem; a random one used for LoRA does.
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.1)  # type: ignore[operator]
    return model


def make_tiny_model(out: Path, hidden: int = 256, layers: int = 2, seed: int = 0) -> Path:
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), hidden, layers, seed)
    model.config.eos_token_id = tokenizer.convert_tokens_to_ids("<|end|>")
    model.config.pad_token_id = tokenizer.convert_tokens_to_ids("<|pad|>")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    # The platform reads the family from here when MODEL_FAMILY is not set.
    (out / "ft_model.json").write_text(json.dumps({"family": "tiny", "name": "tiny-chat"}) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model and tokenizer to")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = make_tiny_model(args.out, args.hidden, args.layers, args.seed)
    print(f"tiny model written to {path}")


if __name__ == "__main__":
    main()
