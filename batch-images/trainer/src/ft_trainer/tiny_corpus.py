"""A synthetic pre-training corpus for the tiny base model: chat examples with made-up content, in English
and in Chinese.

A randomly initialised model is a poor stand-in for a real base model when fine-tuned with LoRA: its
frozen weights carry no features for the adapter to steer, and in our measurements a LoRA run on it
recalled 0–5 of the 54 sample answers where the same run on a briefly pre-trained model recalled all
of them. This corpus gives the tiny model what a real base model brings: the chat layout, word-shaped
byte sequences, capitals, numbers and codes, ending a reply with the end token. A third of the examples
are Chinese, with made-up names drawn from the common characters (`common_chinese()`, the tokenizer's
single-token characters) so that every one of them is trained: on samples/bilingual-qa.jsonl's Chinese
answers the model pre-trained on English alone lost 33 nats per character (pre-training had pushed every
byte above 0x7F down), this one 6.2 (English: 3.1 both). The contents are random (the answers are
unrelated to the questions), so the base model knows no facts a test could ask for.
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

# Chinese: everyday words for the phrases, and the same kinds of questions as the English ones.
_ZH_WORDS = (
    "的 了 在 是 和 与 也 都 就 又 很 不 有 没有 这 那 每 一个 一座 一条 两个 几个 许多 我们 他们 "
    "旧 新 红 蓝 绿 灰 黑 小 大 长 短 高 低 远 近 快 慢 东 西 南 北 上 下 里 外 前 后 "
    "河 城 湖 山 石头 铁 木头 玻璃 盐 金子 铜 年 天 夜晚 月亮 国王 王后 房子 公会 大门 道路 "
    "桥 塔 市场 学校 船 小船 鸟 狐狸 狼 马 面包师 灯 时钟 书 地图 抽屉 架子 硬币 珠子 蜡烛 "
    "钥匙 窗户 院子 田野 农场 森林 海边 街道 村子 工厂 车站 码头 灯塔 仓库 广场 花园 "
    "走 看 写 读 找 做 买 卖 造 住 开 关 带 送 等 回来 出发 记得 知道 喜欢 需要 "
    "今天 明天 昨天 早上 中午 晚上 春天 夏天 秋天 冬天 一直 已经 常常 从来 大概"
).split()
_ZH_KINDS = (
    "首都 创始人 颜色 价格 高度 年龄 名字 首领 格言 标志 货币 费用 票价 作者 口号 主人 邮编 电话".split()
)
_ZH_ROLES = ["守护人", "书记员", "向导", "管家", "档案员"]
_ZH_PLACES = ["镇", "村", "城", "港", "岛", "山庄", "公司", "学院", "酒馆", "商店"]


def common_chinese() -> list[str]:
    """GB2312's first level: the 3,755 most common Chinese characters, in the standard's order.

    Derived from Python's own `gb2312` codec (rows 16–55 of the code table), so it needs no data file and
    is the same on every machine. The tokenizer gives each of them one token (tiny_model.py)."""
    chars = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            if row == 0xD7 and cell > 0xF9:  # row 55 ends at cell 89
                break
            chars.append(bytes([row, cell]).decode("gb2312"))
    return chars


# Full-width punctuation that Chinese text uses: single tokens too.
CHINESE_PUNCTUATION = "，。？！：；、“”‘’（）《》【】…—～"


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.hanzi = common_chinese()
        self.deck: list[str] = []

    # --- English --------------------------------------------------------------------------------------

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

    # --- Chinese: the same shapes -------------------------------------------------------------------

    def character(self) -> str:
        """The next of the common characters in a shuffled deck: each is drawn once before any twice, so
        the corpus uses every one of them (random draws missed a tenth) and each token is trained."""
        if not self.deck:
            self.deck = self.hanzi[:]
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def zh_name(self, place: bool = False) -> str:
        """A made-up name of two or three common characters; a place name gets a suffix."""
        rng = self.rng
        name = "".join(self.character() for _ in range(rng.randint(2, 3)))
        return name + rng.choice(_ZH_PLACES) if place else name

    def zh_phrase(self, words: int) -> str:
        rng = self.rng
        return "".join(
            rng.choice(_ZH_WORDS) if rng.random() < 0.6 else self.zh_name(rng.random() < 0.3)
            for _ in range(words)
        )

    def zh_sentence(self) -> str:
        rng = self.rng
        text = self.zh_phrase(rng.randint(2, 7))
        if rng.random() < 0.3:
            text += f"{rng.randint(1, 5000)}"
        if rng.random() < 0.2:
            text += f"，{self.zh_phrase(rng.randint(1, 4))}"
        return text + rng.choice(["。", "。", "。", "！"])

    def zh_question(self) -> tuple[str, str]:
        rng = self.rng
        kind = rng.randrange(6)
        # Only what the question shows is drawn: a drawn name that no text used would leave its
        # characters out of the corpus.
        if kind == 5:
            question = self.zh_phrase(rng.randint(3, 8))
            return question + "？", question[:2]
        if kind == 2:
            thing = f"{rng.choice(_ZH_WORDS)}{rng.choice(_ZH_WORDS)}"
            return f"{thing}在哪里？", thing
        name = self.zh_name(rng.random() < 0.5)
        if kind == 0:
            what = rng.choice(_ZH_KINDS)
            return f"{name}的{what}是什么？", f"{name}的{what}"
        if kind == 1:
            return f"谁{rng.choice(['创立了', '建造了', '写了', '管理'])}{name}？", name
        if kind == 3:
            return f"{name}是什么时候{rng.choice(['开张', '建成', '开始', '结束'])}的？", name
        return f"{name}有多{rng.choice(['高', '老', '远', '大'])}？", name

    def zh_answer(self, subject: str) -> str:
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            return f"{self.zh_name()}，{self.zh_phrase(rng.randint(2, 4))}。"
        if kind == 1:
            return f"{self.zh_name()}，{rng.randint(900, 2020)}年。"
        if kind == 2:
            return f"{self.zh_name()}-{rng.randint(1, 999):03d}"
        if kind == 3:
            return "".join(self.zh_sentence() for _ in range(rng.randint(1, 2)))
        return f"{subject}是{self.zh_phrase(rng.randint(1, 4))}" + rng.choice(
            ["。", f"，{rng.randint(1, 999)}。"]
        )

    def zh_example(self) -> dict[str, Any]:
        rng = self.rng
        messages: list[dict[str, str]] = []
        if rng.random() < 0.2:
            role = rng.choice(_ZH_ROLES)
            messages.append({"role": "system", "content": f"你是{self.zh_name(True)}的{role}。"})
        for _ in range(1 if rng.random() < 0.8 else 2):
            question, subject = self.zh_question()
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": self.zh_answer(subject)})
        return {"messages": messages}


def write_corpus(path: Path, examples: int, seed: int = 0, chinese_share: float = 1 / 3) -> Path:
    """`examples` chat lines in the platform's `messages` format, the same for the same seed; about
    `chinese_share` of them in Chinese.

    A third by default: of make_tiny_model's 3,072 examples, the 2,048 English ones of the English-only
    recipe and 1,024 Chinese. With 2,048 examples half in Chinese, the model bound a fine-tuned answer to
    its question more slowly (on the evaluation tests' contradicting validation set the loss no longer
    turned upwards within 80 steps)."""
    writer = _Writer(seed)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(examples):
            chinese = writer.rng.random() < chinese_share
            example = writer.zh_example() if chinese else writer.example()
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
    return path
