#!/usr/bin/env python3
"""Write the prompts of the `smol-chats` dataset: single-turn requests of five kinds (explanations, lists,
arithmetic word problems, short Python functions, short poems), composed from fixed word lists with a
fixed seed, each with an empty assistant turn for the target to answer (`specforge regenerate`, or a
run's `spec.dataset.regenerate`). The prompts are written by this script, not taken from anywhere; the
answers in the shipped dataset are SmolLM2-135M-Instruct's own (see the README for the command).

No prompt appears twice, so the last lines (a run's held-out conversations) are new requests of the
kinds the earlier lines teach, never repeats of them.

Usage: hack/smol_prompts.py [--count N] [--seed S] > prompts.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable

TOPICS = [
    "photosynthesis",
    "gravity",
    "a rainbow",
    "the water cycle",
    "an eclipse",
    "a volcano",
    "the tides",
    "a thunderstorm",
    "electricity",
    "magnetism",
    "a vaccine",
    "the immune system",
    "a black hole",
    "the seasons",
    "evaporation",
    "friction",
    "a battery",
    "inflation",
    "a budget",
    "compound interest",
    "a database",
    "a computer virus",
    "the internet",
    "a password",
    "recycling",
    "composting",
    "erosion",
    "an earthquake",
    "a glacier",
    "a desert",
    "a rainforest",
    "coral reefs",
    "bees and pollination",
    "a solar panel",
    "a wind turbine",
    "a heat wave",
    "a fever",
    "sleep",
    "exercise",
    "a healthy diet",
    "a library",
    "a museum",
    "democracy",
    "a map",
    "a compass",
    "a telescope",
    "a microscope",
    "DNA",
    "a cell",
    "bacteria",
    "a habit",
    "a good question",
    "teamwork",
    "a deadline",
    "a recipe",
    "yeast in bread",
    "rust",
    "ice melting",
    "sound",
    "light",
    "an echo",
    "a shadow",
    "the moon's phases",
    "a comet",
]
EXPLAIN = [
    "Explain {topic} in two sentences.",
    "What is {topic}? Answer briefly.",
    "Explain {topic} to a ten-year-old.",
    "Give a short explanation of {topic}.",
    "In one paragraph, what should I know about {topic}?",
    "Why does {topic} matter? Keep it short.",
]
CATEGORIES = [
    "fruits",
    "vegetables",
    "colours",
    "farm animals",
    "sea animals",
    "birds",
    "insects",
    "trees",
    "flowers",
    "musical instruments",
    "sports",
    "board games",
    "kitchen tools",
    "tools in a garage",
    "things to pack for a beach trip",
    "ways to save water",
    "ways to save energy at home",
    "healthy breakfast ideas",
    "indoor hobbies",
    "outdoor activities",
    "countries in Europe",
    "countries in Asia",
    "capital cities",
    "planets",
    "programming languages",
    "jobs in a hospital",
    "things found in a classroom",
    "reasons to read books",
    "tips for studying",
    "tips for a job interview",
    "ways to be kind",
    "winter clothes",
    "things that are round",
    "things that are cold",
    "rainy day ideas",
    "simple dinner ideas",
    "ways to stay focused",
    "parts of a bicycle",
    "parts of a computer",
    "shapes",
]
LISTS = [
    "List {n} {category}.",
    "Name {n} {category}.",
    "Give me {n} {category}, one per line.",
    "Write a numbered list of {n} {category}.",
    "What are {n} {category}? Keep it short.",
]
NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jack",
    "Kofi",
    "Lena",
    "Mia",
    "Noah",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Yara",
    "Zoe",
]
ITEMS = [
    "apples",
    "pencils",
    "stickers",
    "marbles",
    "books",
    "cookies",
    "stamps",
    "coins",
    "cards",
    "shells",
    "balloons",
    "candles",
    "eggs",
    "plums",
    "buttons",
    "toy cars",
    "flowers",
    "cupcakes",
    "beads",
    "ribbons",
]


def _fill(template: str, **slots: object) -> str:
    return template.format(**slots)


WORD_PROBLEMS: list[Callable[[random.Random], str]] = [
    lambda r: _fill(
        "{name} has {a} {item}. {name} buys {b} more. How many {item} does {name} have now?",
        name=r.choice(NAMES),
        item=r.choice(ITEMS),
        a=r.randint(2, 60),
        b=r.randint(2, 40),
    ),
    lambda r: _fill(
        "{name} had {a} {item} and gave {b} to a friend. How many {item} are left?",
        name=r.choice(NAMES),
        item=r.choice(ITEMS),
        a=r.randint(20, 90),
        b=r.randint(1, 19),
    ),
    lambda r: _fill(
        "There are {a} boxes with {b} {item} in each box. How many {item} are there in total?",
        item=r.choice(ITEMS),
        a=r.randint(2, 12),
        b=r.randint(2, 12),
    ),
    lambda r: _fill(
        "{name} shares {t} {item} equally among {k} friends. How many does each friend get?",
        name=r.choice(NAMES),
        item=r.choice(ITEMS),
        k=(k := r.randint(2, 9)),
        t=k * r.randint(2, 12),
    ),
    lambda r: (
        f"A book costs {r.randint(3, 25)} dollars and a pen costs {r.randint(1, 6)} dollars. What do {r.randint(2, 5)} books and one pen cost?"
    ),
    lambda r: _fill(
        "A train travels {s} kilometres per hour for {h} hours. How far does it go?",
        s=r.choice([40, 50, 60, 70, 80, 90, 100, 120]),
        h=r.randint(2, 6),
    ),
    lambda r: _fill(
        "{name} reads {p} pages a day. How many pages does {name} read in {d} days?",
        name=r.choice(NAMES),
        p=r.randint(5, 40),
        d=r.randint(2, 14),
    ),
]
CODE_TASKS = [
    "returns the sum of a list of numbers",
    "reverses a string",
    "checks whether a number is even",
    "returns the largest number in a list",
    "counts the vowels in a string",
    "returns the factorial of n",
    "checks whether a string is a palindrome",
    "returns the average of a list",
    "squares every number in a list",
    "removes duplicates from a list",
    "converts Celsius to Fahrenheit",
    "returns the first n even numbers",
    "counts how often a word appears in a sentence",
    "checks whether a number is prime",
    "returns the n-th Fibonacci number",
    "capitalises the first letter of every word",
    "returns the smallest number in a list",
    "merges two lists into one sorted list",
    "returns the length of the longest word in a sentence",
    "turns a list of words into one string",
    "checks whether a list is sorted",
    "returns the digits of a number as a list",
    "adds two numbers",
    "returns the area of a circle given its radius",
    "filters out negative numbers from a list",
]
CODE = [
    "Write a Python function that {task}.",
    "Write a short Python function that {task}.",
    "Show me Python code for a function that {task}.",
    "How do I write a Python function that {task}?",
]
SUBJECTS = [
    "the sea",
    "autumn leaves",
    "a cat",
    "the morning sun",
    "rain",
    "a quiet forest",
    "the stars",
    "snow",
    "a river",
    "friendship",
    "a mountain",
    "the city at night",
    "a garden",
    "spring",
    "the wind",
    "a lighthouse",
    "coffee",
    "a library",
    "an old tree",
    "summer",
    "the moon",
    "a dog",
    "a candle",
    "a train journey",
    "the first day of school",
    "a storm",
    "a sunflower",
    "the ocean waves",
    "home",
]
POEMS = [
    "Write a haiku about {subject}.",
    "Write a short poem about {subject}.",
    "Write a four-line poem about {subject}.",
    "Write a short rhyming poem about {subject}.",
]
CODE_EXTRAS = ["", " Add a docstring.", " Keep it short.", " Include one example call.", " Use a loop."]
POEM_EXTRAS = ["", " Make it cheerful.", " Make it calm.", " Use simple words.", " End with a question."]
KINDS: list[Callable[[random.Random], str]] = [
    lambda r: r.choice(EXPLAIN).format(topic=r.choice(TOPICS)),
    lambda r: r.choice(LISTS).format(n=r.randint(3, 6), category=r.choice(CATEGORIES)),
    lambda r: r.choice(WORD_PROBLEMS)(r),
    lambda r: r.choice(CODE).format(task=r.choice(CODE_TASKS)) + r.choice(CODE_EXTRAS),
    lambda r: r.choice(POEMS).format(subject=r.choice(SUBJECTS)) + r.choice(POEM_EXTRAS),
]
#: Distinct prompts per kind before one runs out (the explanations, at 6 x 64).
MAX_COUNT = 5 * 384


def prompts(count: int, seed: int) -> list[str]:
    """``count`` distinct prompts, the kinds in turn so every stretch of the file has all five."""
    if count > MAX_COUNT:
        raise ValueError(f"at most {MAX_COUNT} distinct prompts (five kinds in turn), not {count}")
    rng = random.Random(seed)
    seen: set[str] = set()
    found: list[str] = []
    while len(found) < count:
        prompt = KINDS[len(found) % len(KINDS)](rng)
        if prompt not in seen:
            seen.add(prompt)
            found.append(prompt)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for index, prompt in enumerate(prompts(args.count, args.seed)):
        record = {
            "id": f"smol-chats-{index:05d}",
            "conversations": [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}],
        }
        sys.stdout.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
