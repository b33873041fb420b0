"""The tiny base model's recipe: the synthetic corpus is valid, repeatable and bilingual, the tokenizer
gives common Chinese characters one token each, the catalog describes the model that is made, and a model
made by the current recipe is kept while one made by another recipe is made again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from conftest import ANSWERS
from ft_trainer.chat_format import messages_from_line
from ft_trainer.config import CATALOG
from ft_trainer.tiny_corpus import CHINESE_PUNCTUATION, common_chinese, write_corpus
from ft_trainer.tiny_model import PRETRAIN_EXAMPLES, build_tokenizer, make_tiny_model

BILINGUAL = Path(__file__).resolve().parents[3] / "samples" / "bilingual-qa.jsonl"


def test_the_corpus_is_the_same_for_a_seed_and_every_line_is_a_valid_chat_example(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "a.jsonl", 300, seed=3).read_text()
    assert write_corpus(tmp_path / "b.jsonl", 300, seed=3).read_text() == first
    assert write_corpus(tmp_path / "c.jsonl", 300, seed=4).read_text() != first
    lines = first.splitlines()
    assert len(lines) == 300
    for line in lines:
        messages = messages_from_line(json.loads(line))
        assert messages[-1].role == "assistant" and messages[-1].content
    chinese = [line for line in lines if not line.isascii()]
    assert 0.25 < len(chinese) / len(lines) < 0.42  # a third


def test_the_pretraining_corpus_uses_every_common_chinese_character_and_knows_no_sample_answer(
    tmp_path: Path,
) -> None:
    # The corpus the model is pre-trained on (make_tiny_model's defaults).
    text = write_corpus(tmp_path / "corpus.jsonl", PRETRAIN_EXAMPLES, seed=0).read_text("utf-8")
    counts = Counter(text)
    assert min(counts[ch] for ch in common_chinese()) >= 2
    # Made-up content only: no answer the tests train on can be known before training.
    bilingual = [
        messages_from_line(json.loads(line))[-1].content for line in BILINGUAL.read_text("utf-8").splitlines()
    ]
    assert not [answer for answer in [a for _, a in ANSWERS] + bilingual if answer in text]


def test_the_tokenizer_gives_a_common_chinese_character_one_token_and_encodes_any_text() -> None:
    tokenizer = build_tokenizer()
    assert common_chinese()[:3] == ["啊", "阿", "埃"] and len(common_chinese()) == 3755
    for ch in [*common_chinese(), *CHINESE_PUNCTUATION]:
        assert len(tokenizer.encode(ch, add_special_tokens=False)) == 1, ch
    sentence = "星河中学的校训是什么？勤学，守信，向远。"
    assert len(tokenizer.encode(sentence, add_special_tokens=False)) == len(sentence)
    # English stays one token per byte; a rarer character, an emoji or accents take a few tokens each.
    assert len(tokenizer.encode("Hello, world!", add_special_tokens=False)) == 13
    for text in ["茉莉 😀 wörld", "<|user|>你好<|end|>", "\u0000\ttab"]:
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    assert len(tokenizer.encode("<|assistant|>", add_special_tokens=False)) == 1
    # The vocabulary is a function of the code alone: the same ids every time.
    assert build_tokenizer().get_vocab() == tokenizer.get_vocab()


def test_the_catalog_entry_of_tiny_chat_describes_the_model_that_is_made(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry = CATALOG.model("tiny-chat")
    assert entry is not None and entry.architecture is not None
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config, tokenizer = model.config, AutoTokenizer.from_pretrained(tiny_model)
    assert dict(entry.architecture) == {
        "layers": config.num_hidden_layers,
        "hiddenSize": config.hidden_size,
        "attentionHeads": config.num_attention_heads,
        "kvHeads": config.num_key_value_heads,
        "intermediateSize": config.intermediate_size,
        "vocabSize": config.vocab_size,
        "tiedEmbeddings": config.tie_word_embeddings,
    }
    assert config.vocab_size == len(tokenizer)
    assert entry.parameters == sum(p.numel() for p in model.parameters())  # the tied embeddings once
    assert entry.max_seq_length == config.max_position_embeddings == tokenizer.model_max_length


def test_a_model_of_the_current_recipe_is_kept_and_one_of_another_recipe_is_remade(tmp_path: Path) -> None:
    out = tmp_path / "tiny-chat"
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    weights = out / "model.safetensors"
    made = weights.stat().st_mtime_ns
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    assert weights.stat().st_mtime_ns == made

    (out / "ft_model.json").write_text(json.dumps({"family": "tiny", "name": "tiny-chat", "recipe": 1}))
    make_tiny_model(out, hidden=32, layers=1, pretrain_examples=0)
    assert json.loads((out / "ft_model.json").read_text())["hidden"] == 32
    assert weights.stat().st_mtime_ns != made
    # The model is assembled beside `out` and moved into place: no scratch directory is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-chat"]
