"""A synthetic pre-training corpus for the tiny base model: chat examples with made-up content.

A randomly initialised model is a poor stand-in for a real base model when fine-tuned with LoRA: its
frozen weights carry no features for the adapter to steer, and in our measurements a LoRA run on it
recalled 0–5 of the 54 sample answers where the same run on a briefly pre-trained model recalled all
of them. This corpus gives the tiny model what a real base model brings: the chat layout, word-shaped
byte sequences, capitals, numbers and codes, ending a reply with the end token. The contents are random
(the answers are unrelated to the questions), so the base model knows no facts a test could ask for.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

_ONSETS = "b c d f g h k l m n p r s t v w z br cr dr fl gr kl pr st tr th sh ch".split()
_VOWELS = "a e i o u ai ea ou io".split()
_CODAS = ["", "n", "r", "l", "s", "th", "m", "ck"]
_WORDS = (
    "the a an of in on at by with for from and or but to is was are were has had it its this that old new "
    "red blue green grey black white small large north south east west river town city lake hill stone "
    "iron wood glass salt silver gold copper every each first second third last year day night moon king "
    "queen house guild gate road bridge tower market school ship boat fish bird owl fox wolf horse baker "
    "smith lamp clock book map chart drawer shelf coin bead candle bell key door window garden field farm"
).split()
_KINDS = "capital founder colour price height age name leader motto emblem currency fee fare author".split()
_ROLES = ["keeper", "clerk", "guide", "voice", "archivist"]


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def made_up(self, capital: bool = False) -> str:
        rng = self.rng
        syllables = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 3)))
        word = syllables + rng.choice(_CODAS)
        return word.title() if capital else word

    def phrase(self, words: int) -> str:
        rng = self.rng
        return " ".join(
            rng.choice(_WORDS) if rng.random() < 0.6 else self.made_up(rng.random() < 0.4)
            for _ in range(words)
        )

    def sentence(self) -> str:
        rng = self.rng
        text = self.phrase(rng.randint(2, 7))
        if rng.random() < 0.3:
            text += f" {rng.randint(1, 5000)}"
        if rng.random() < 0.2:
            text += f", {self.phrase(rng.randint(1, 4))}"
        return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "!"])

    def question(self) -> tuple[str, str]:
        """A question and its subject, which the answer often repeats."""
        rng = self.rng
        name = self.made_up(True)
        kind = rng.choice(_KINDS)
        thing = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"
        return rng.choice(
            [
                (f"What is the {kind} of {name}?", f"The {kind} of {name}"),
                (f"Who {rng.choice(['founded', 'built', 'wrote', 'runs'])} {name}?", name),
                (f"Where is the {thing}?", f"The {thing}"),
                (f"When did {name} {rng.choice(['open', 'fall', 'begin', 'end'])}?", name),
                (f"How {rng.choice(['tall', 'old', 'far', 'big'])} is {name}?", name),
                (self.phrase(rng.randint(3, 8)).capitalize() + "?", name),
            ]
        )

    def answer(self, subject: str) -> str:
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            return f"{self.made_up(True)}, {self.phrase(rng.randint(2, 4))}."
        if kind == 1:
            return f"{self.made_up(True)} {self.made_up(True)}, in {rng.randint(900, 2020)}."
        if kind == 2:
            code = "-".join(self.made_up().upper() for _ in range(rng.randint(1, 2)))
            return f"{code}-{rng.randint(1, 999):03d}"
        if kind == 3:
            return " ".join(self.sentence() for _ in range(rng.randint(1, 2)))
        # Answers that repeat the question's subject: a model that has learned to look back at the
        # prompt can bind a fine-tuned fact to the words that ask for it.
        return f"{subject} is {self.phrase(rng.randint(1, 4))}" + rng.choice(
            [".", f", {rng.randint(1, 999)}."]
        )

    def example(self) -> dict[str, Any]:
        rng = self.rng
        messages: list[dict[str, str]] = []
        if rng.random() < 0.2:
            place = self.made_up(True)
            messages.append({"role": "system", "content": f"You are the {rng.choice(_ROLES)} of {place}."})
        for _ in range(1 if rng.random() < 0.8 else 2):
            question, subject = self.question()
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": self.answer(subject)})
        return {"messages": messages}


def write_corpus(path: Path, examples: int, seed: int = 0) -> Path:
    """`examples` chat lines in the platform's `messages` format, the same for the same seed."""
    writer = _Writer(seed)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(examples):
            out.write(json.dumps(writer.example()) + "\n")
    return path
