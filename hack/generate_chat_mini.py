"""Regenerate the bundled demo data: the ``chat-mini`` dataset and the tokenizer trained on it.

The files are committed as package data, so a run never calls this (nor does the wheel ship it); it
exists so the data is reproducible and reviewable instead of an opaque blob. The conversations are templated small talk
(arithmetic, facts, lists, rewrites) built from a fixed seed: enough repeated structure that a tiny
draft model measurably learns to imitate a target within a two-minute CPU run.

    .venv/bin/python hack/generate_chat_mini.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

RESOURCES_DIR = Path(__file__).resolve().parents[1] / "trainer" / "specforge_trainer" / "resources"
DATASET_PATH = RESOURCES_DIR / "chat_mini.jsonl"
TOKENIZER_DIR = RESOURCES_DIR / "chat_mini_tokenizer"
TOKENIZER_VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# Jinja chat template: each turn is ``<|role|> content <|end|>``; the whole chat opens with ``<s>``.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
]
_CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Egypt": "Cairo",
    "Canada": "Ottawa",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Chile": "Santiago",
}
_COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "a lemon": "yellow"}
_ITEMS = ["apples", "books", "chairs", "coins", "lamps", "pencils", "shoes", "stones"]
_SYSTEM = "You are a helpful assistant. Answer briefly and clearly."


def _arithmetic(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return (
        f"What is {a} plus {b}?",
        f"{a} plus {b} is {a + b}. In words, {_NUMBER_WORDS[a]} plus {_NUMBER_WORDS[b]} "
        f"is {_NUMBER_WORDS[a + b]}.",
    )


def _capital(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(_CAPITALS))
    return f"What is the capital of {country}?", f"The capital of {country} is {_CAPITALS[country]}."


def _colour(rng: random.Random) -> tuple[str, str]:
    thing = rng.choice(sorted(_COLOURS))
    return f"What colour is {thing}?", f"The colour of {thing} is usually {_COLOURS[thing]}."


def _counting(rng: random.Random) -> tuple[str, str]:
    start, length = rng.randint(1, 8), rng.randint(3, 6)
    numbers = ", ".join(str(n) for n in range(start, start + length))
    return f"Count from {start} for {length} numbers.", f"Here you go: {numbers}."


def _inventory(rng: random.Random) -> tuple[str, str]:
    item, have, give = rng.choice(_ITEMS), rng.randint(5, 9), rng.randint(1, 4)
    return (
        f"I have {have} {item} and give away {give}. How many {item} are left?",
        f"You started with {have} {item} and gave away {give}, so {have - give} {item} are left.",
    )


def _shopping_list(rng: random.Random) -> tuple[str, str]:
    items = rng.sample(_ITEMS, 3)
    bullet_list = "\n".join(f"- {item}" for item in items)
    return (
        f"Make a list of {items[0]}, {items[1]} and {items[2]}.",
        f"Sure, here is the list:\n{bullet_list}",
    )


_TOPICS = [_arithmetic, _capital, _colour, _counting, _inventory, _shopping_list]


def build_conversations(count: int, seed: int = 0) -> list[dict[str, object]]:
    """Templated chats; every third one uses the ``messages`` schema, the rest ``conversations``."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for index in range(count):
        turns: list[dict[str, str]] = []
        if index % 4 == 0:
            turns.append({"role": "system", "content": _SYSTEM})
        for _ in range(rng.randint(1, 2)):
            question, answer = rng.choice(_TOPICS)(rng)
            turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        key = "messages" if index % 3 == 0 else "conversations"
        rows.append({"id": f"chat-mini-{index:04d}", key: turns})
    return rows


def train_tokenizer(texts: list[str]) -> Tokenizer:
    """A byte-level BPE over the dataset text, small enough for the built-in target's vocabulary."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def main() -> None:
    rows = build_conversations(count=480)
    with DATASET_PATH.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    texts = [turn["content"] for row in rows for turn in row.get("messages", row.get("conversations"))]  # type: ignore[attr-defined]
    TOKENIZER_DIR.mkdir(exist_ok=True)
    train_tokenizer(texts).save(str(TOKENIZER_DIR / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "model_max_length": 4096,
        "chat_template": CHAT_TEMPLATE,
    }
    (TOKENIZER_DIR / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {len(rows)} conversations to {DATASET_PATH} and a tokenizer to {TOKENIZER_DIR}")


if __name__ == "__main__":
    main()
