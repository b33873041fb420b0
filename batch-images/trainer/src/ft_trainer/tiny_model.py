"""Makes the tiny base model of the local platform and the tests: no downloads, deterministic.

A byte-level tokenizer (256 byte tokens, one token for each of the 3,755 common Chinese characters and
20 full-width punctuation marks, 300 for the pairs of leading bytes they share, and the `tiny` chat
family's 5 special tokens: 4,336 ids) and a small
Llama-architecture causal LM, seeded, then pre-trained for one short epoch on a synthetic English and
Chinese chat corpus (tiny_corpus.py) so that, like a real base model, it has features a LoRA adapter can
build on. Small enough to make and train on a laptop CPU in seconds, large enough to memorise a few dozen
short answers in either language.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .chat_format import special_tokens


def byte_tokenizer(
    specials: list[str], eos: str, pad: str | None = None, merges: list[tuple[str, str]] | None = None
) -> Any:
    """A byte-level tokenizer (one id per UTF-8 byte) with `specials` as single ids, and a token for each
    of `merges` (BPE merges over the byte symbols) on top; without merges, bytes only.

    The tiny model uses it with its own chat tokens and `chinese_merges()`; the tests also use it without
    merges as an offline stand-in for the ChatGLM3, GLM-4 and ChatML tokenizers (same special tokens,
    bytes for the text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for left, right in merges or []:
        vocab.setdefault(left + right, len(vocab))
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges or []))
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


def chinese_merges() -> list[tuple[str, str]]:
    """Merges that make each common Chinese character and full-width punctuation mark one token
    (tiny_corpus.py's `common_chinese()` and `CHINESE_PUNCTUATION`): a character's first two UTF-8
    bytes, then that pair and the third. A rarer character is then two tokens (its first two bytes
    merged, and the last), and English stays one token per byte.

    With bytes only, a Chinese character was three tokens: a 512-token context held a third as much
    Chinese, and an answer took three times the tokens to learn and to generate (a chat reply of 48
    tokens held 16 characters)."""
    from tokenizers import pre_tokenizers

    from .tiny_corpus import CHINESE_PUNCTUATION, common_chinese

    # The byte symbols the ByteLevel pre-tokenizer maps each character's UTF-8 bytes to.
    to_symbols = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str
    symbols = [to_symbols(ch)[0][0] for ch in [*common_chinese(), *CHINESE_PUNCTUATION]]
    assert all(len(s) == 3 for s in symbols), "each character is three UTF-8 bytes"
    pairs = list(dict.fromkeys((s[0], s[1]) for s in symbols))
    return pairs + [(s[:2], s[2]) for s in symbols]


def build_tokenizer() -> Any:
    return byte_tokenizer(special_tokens("tiny"), eos="<|end|>", pad="<|pad|>", merges=chinese_merges())


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
    # likely. Pre-training (tiny_corpus.py) starts from these weights, so the recipe depends on it.
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.1)  # type: ignore[operator]
    return model


# Bump when the recipe changes: a cached model made by an older recipe is then made again.
RECIPE = 3
# Synthetic chat examples to pre-train on: 2,048 in English and 1,024 in Chinese (tiny_corpus.py).
PRETRAIN_EXAMPLES = 3072
PRETRAIN_HYPERPARAMETERS: dict[str, object] = {
    "n_epochs": 1,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "max_seq_length": 256,
    "checkpoint_every_steps": 10**7,
    "eval_interval": 10**7,
    "metrics_interval_seconds": 5.0,
}


class _Progress:
    """Pre-training progress on stdout: `npm start` shows it on the first run."""

    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        pass

    def metrics(self, data: dict[str, Any]) -> None:
        print(f"  pre-training the tiny model: step {data['step']}/{data['total_steps']}", flush=True)


def _marker(hidden: int, layers: int, seed: int, pretrain_examples: int) -> dict[str, object]:
    return {
        "family": "tiny",
        "name": "tiny-chat",
        "recipe": RECIPE,
        "hidden": hidden,
        "layers": layers,
        "seed": seed,
        "pretrain_examples": pretrain_examples,
    }


def is_current(out: Path, marker: dict[str, object]) -> bool:
    try:
        return bool(json.loads((out / "ft_model.json").read_text()) == marker)
    except (OSError, ValueError):
        return False


def make_tiny_model(
    out: Path, hidden: int = 256, layers: int = 2, seed: int = 0, pretrain_examples: int = PRETRAIN_EXAMPLES
) -> Path:
    """Writes the model to `out` unless the same recipe is there already. It is assembled next to `out`
    and moved into place at the end, so an interrupted run leaves no half-made model behind."""
    marker = _marker(hidden, layers, seed, pretrain_examples)
    if is_current(out, marker):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as scratch:
        work = Path(scratch)
        raw = work / "random"
        tokenizer = build_tokenizer()
        model = build_model(len(tokenizer), hidden, layers, seed)
        model.config.eos_token_id = tokenizer.convert_tokens_to_ids("<|end|>")
        model.config.pad_token_id = tokenizer.convert_tokens_to_ids("<|pad|>")
        model.save_pretrained(raw, safe_serialization=True)
        tokenizer.save_pretrained(raw)
        made = _pretrain(raw, work, pretrain_examples, seed) if pretrain_examples > 0 else raw
        # The platform reads the family from here when MODEL_FAMILY is not set.
        (made / "ft_model.json").write_text(json.dumps(marker) + "\n")
        if out.exists():
            shutil.rmtree(out)
        made.rename(out)
    return out


def _pretrain(raw: Path, work: Path, examples: int, seed: int) -> Path:
    from .config import parse_hyperparameters
    from .tiny_corpus import write_corpus
    from .train import TrainRequest, run_training

    corpus = write_corpus(work / "corpus.jsonl", examples, seed)
    result = run_training(
        TrainRequest(
            base_model=raw,
            family="tiny",
            method="full",
            hyperparameters=parse_hyperparameters({**PRETRAIN_HYPERPARAMETERS, "seed": seed}),
            training_file=corpus,
            validation_file=None,
            output_dir=work / "pretrain",
            events=_Progress(),
            # The same weights on every machine, GPU or not.
            device="cpu",
        )
    )
    return result.result_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model and tokenizer to")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pretrain-examples",
        type=int,
        default=PRETRAIN_EXAMPLES,
        help="synthetic chat examples to pre-train on; 0: none",
    )
    args = parser.parse_args()
    marker = _marker(args.hidden, args.layers, args.seed, args.pretrain_examples)
    if is_current(args.out, marker):
        print(f"tiny model in {args.out} is up to date")
        return
    path = make_tiny_model(args.out, args.hidden, args.layers, args.seed, args.pretrain_examples)
    print(f"tiny model written to {path}")


if __name__ == "__main__":
    main()
