"""A small SYNTHETIC sentiment dataset in several domains, written by a seeded grammar.

The sentences are not real reviews: a template grammar combines domain aspects
("the pasta", "the battery") with sentiment words and phrases, so the data is tiny,
ships with the code, needs no download and is reproducible from a seed. It is meant
for tests, demos and benchmarks of text transfer, not for judging a model's quality.

Labels: ``0`` = negative, ``1`` = positive. The held-out split of every domain uses
sentiment words and phrases that **never occur in the training split** (e.g. train
"great", test "superb"), so held-out accuracy measures what a model knows about words
it was not trained on: a pretrained encoder knows "superb" is positive, a model trained
from scratch on the training split does not. About 10% of sentences are negated
("The soup was not good." is negative).
"""

from __future__ import annotations

import numpy as np

from keras_transfer.datasets.digits import DomainSplit

SENTIMENT_CLASS_NAMES = ("negative", "positive")

# Each pool: (train words, test words). Train and test never share a word.
_ADJECTIVES = {
    1: (
        ["good", "great", "excellent", "nice", "lovely", "fantastic", "wonderful"],
        ["superb", "outstanding", "terrific", "delightful", "amazing", "brilliant"],
    ),
    0: (
        ["bad", "terrible", "awful", "poor", "horrible", "disappointing", "unpleasant"],
        ["atrocious", "abysmal", "lousy", "appalling", "dreadful", "mediocre"],
    ),
}

_DOMAINS = {
    "restaurants": {
        "aspects": [
            "food",
            "pasta",
            "soup",
            "waiter",
            "service",
            "dessert",
            "steak",
            "pizza",
            "staff",
            "coffee",
            "menu",
            "salad",
        ],
        1: (
            [
                "was delicious",
                "tasted fresh",
                "was served hot",
                "was worth every penny",
                "was friendly and quick",
            ],
            [
                "was mouth-watering",
                "melted in my mouth",
                "was cooked to perfection",
                "made our evening",
            ],
        ),
        0: (
            [
                "was cold and bland",
                "tasted stale",
                "was overcooked",
                "made me sick",
                "was rude and slow",
            ],
            [
                "was greasy and soggy",
                "was burnt",
                "ruined our evening",
                "was raw in the middle",
            ],
        ),
    },
    "electronics": {
        "aspects": [
            "battery",
            "screen",
            "laptop",
            "charger",
            "phone",
            "keyboard",
            "speaker",
            "camera",
            "headphones",
            "tablet",
            "mouse",
            "router",
        ],
        1: (
            [
                "works perfectly",
                "charges quickly",
                "lasts all day",
                "is easy to set up",
                "has a sharp display",
            ],
            ["runs flawlessly", "boots in seconds", "has crisp sound", "was a bargain"],
        ),
        0: (
            [
                "stopped working",
                "keeps crashing",
                "died after a week",
                "overheats constantly",
                "has a cracked display",
            ],
            [
                "broke within days",
                "freezes all the time",
                "drains the battery fast",
                "was a waste of money",
            ],
        ),
    },
}

_OPENERS = ["", "", "", "Honestly, ", "Overall, ", "In short, "]
_ADVERBS = ["really", "very", "truly", "quite", "so"]


def list_text_domains() -> list[str]:
    """Returns the names of the synthetic text domains."""
    return sorted(_DOMAINS)


def _sentence(rng: np.random.Generator, domain: str, label: int, pool: int) -> str:
    """One sentence of `domain` with sentiment `label` from word pool 0=train/1=test."""
    spec = _DOMAINS[domain]
    aspect = str(rng.choice(spec["aspects"]))
    negate = rng.random() < 0.1
    # A negated sentence uses an adjective of the opposite sentiment.
    adjectives = _ADJECTIVES[1 - label if negate else label][pool]
    adj = str(rng.choice(adjectives))
    phrase = str(rng.choice(spec[label][pool]))
    if negate:
        text = f"the {aspect} was not {adj}."
    else:
        kind = int(rng.integers(5))
        adv = str(rng.choice(_ADVERBS))
        text = [
            f"the {aspect} was {adj}.",
            f"{adv} {adj} {aspect}.",
            f"the {aspect} {phrase}.",
            f"what {'an' if adj[0] in 'aeiou' else 'a'} {adj} {aspect}, it {phrase}.",
            f"I thought the {aspect} was {adj}.",
        ][kind]
    opener = str(rng.choice(_OPENERS))
    text = opener + text
    return text[0].upper() + text[1:]


def sentiment_reviews(
    domain: str = "restaurants",
    num_train: int = 160,
    num_test: int = 80,
    seed: int = 0,
) -> DomainSplit:
    """Synthetic labelled sentiment sentences of one domain (balanced classes).

    Args:
        domain: str. One of `list_text_domains()`: `"electronics"`, `"restaurants"`.
            Defaults to `"restaurants"`.
        num_train: int. Training sentences. Defaults to 160.
        num_test: int. Held-out sentences; they use sentiment words absent from the
            training split. Defaults to 80.
        seed: int. Seed of the grammar. Defaults to 0.

    Returns:
        A `DomainSplit` whose `x_*` are 1-D numpy arrays of Python `str` (dtype
        object) and `y_*` are `int32` labels (0 = negative, 1 = positive).

    Raises:
        ValueError: unknown domain or non-positive sizes.

    Examples:
    ```python
    from keras_transfer.datasets.text import sentiment_reviews
    data = sentiment_reviews("electronics", num_train=8, num_test=4)
    assert len(data.x_train) == 8 and set(data.y_train) <= {0, 1}
    ```
    """
    if domain not in _DOMAINS:
        raise ValueError(
            f"Expected domain to be one of {list_text_domains()}. "
            f"Received: domain={domain!r}"
        )
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected {name} to be an int >= 1. Received: {value!r}")
    offset = sorted(_DOMAINS).index(domain)
    rng = np.random.default_rng([seed, offset])
    arrays = []
    for pool, n in ((0, num_train), (1, num_test)):
        labels = np.arange(n, dtype="int32") % 2
        rng.shuffle(labels)
        texts = [_sentence(rng, domain, int(y), pool) for y in labels]
        arrays += [np.array(texts, dtype=object), labels]
    return DomainSplit(*arrays)


def sentiment_domains(
    source: str = "restaurants",
    target: str = "electronics",
    num_train: int = 160,
    num_test: int = 80,
    seed: int = 0,
) -> tuple[DomainSplit, DomainSplit]:
    """A source/target pair of synthetic sentiment domains for domain adaptation.

    Args:
        source: str. Source domain. Defaults to `"restaurants"`.
        target: str. Target domain. Defaults to `"electronics"`.
        num_train: int. Training sentences per domain. Defaults to 160.
        num_test: int. Held-out sentences per domain. Defaults to 80.
        seed: int. Seed of the grammar. Defaults to 0.

    Returns:
        `(source_split, target_split)`, two `DomainSplit`s of strings and labels.

    Raises:
        ValueError: unknown or identical domains.
    """
    if source == target:
        raise ValueError(
            f"Expected two different domains. Received: source={source!r}, "
            f"target={target!r}"
        )
    return (
        sentiment_reviews(source, num_train, num_test, seed),
        sentiment_reviews(target, num_train, num_test, seed),
    )
