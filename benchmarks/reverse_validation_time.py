"""Reverse validation's time: one shared reverse model vs a fresh model per candidate.

`adapt`'s default selector (``ensv_rv``) scores each candidate by a short reverse
fit (`keras_transfer.adaptation.reverse`). Until stop 42 every candidate's reverse
fit built and compiled a new model, so Keras traced a training step per candidate;
`reverse_validation_scores` now compiles one model and resets its weights and its
optimizer before each fit. This script times both side by side, interleaved, on
the five labellings of a five-candidate `auto` run (the target's labels with 0, 10,
30 and 50% of them replaced at random, and one with the classes permuted), and
checks that both give the same scores, for the network `adapt` trains on the
benchmark's digits pairs (the small CNN encoder, the 256-unit normalised
bottleneck, a softmax head).

    python benchmarks/reverse_validation_time.py [--sizes 300 2000] [--repeats 3]
        [--quick] [--output PATH]

Writes `benchmarks/results/reverse_validation_time.json`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import command_line, write_results  # noqa: E402

LABELLINGS = ("exact", "noise_10", "noise_30", "noise_50", "permuted")


def labellings(y, classes: int, seed: int = 0) -> dict:
    """Five pseudo-labellings of ``y`` as one-hot probabilities."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for name in LABELLINGS:
        labels = np.array(y)
        if name.startswith("noise_"):
            flip = rng.random(len(labels)) < int(name.split("_")[1]) / 100
            labels[flip] = rng.integers(0, classes, int(flip.sum()))
        elif name == "permuted":
            labels = rng.permutation(classes)[labels]
        out[name] = np.eye(classes, dtype="float32")[labels]
    return out


def builder(input_shape, classes: int):
    """A function returning the same fresh network each call (seeded): the
    benchmark's small CNN (`domain_adaptation.make_encoder`) under `adapt`'s
    256-unit normalised bottleneck and a softmax head."""
    from domain_adaptation import make_encoder

    from keras_transfer._backend import keras

    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [
                make_encoder(input_shape),
                keras.layers.Dense(256),
                keras.layers.BatchNormalization(momentum=0.9),
                keras.layers.ReLU(),
                keras.layers.Dense(classes, activation="softmax"),
            ]
        )

    return build


def measure(size: int, repeats: int, epochs: int) -> dict:
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.reverse import (
        reverse_validation,
        reverse_validation_scores,
    )
    from keras_transfer.datasets import digits_domains

    source, target = digits_domains(size=32)
    xt, yt = target.x_train[:size], target.y_train[:size]
    xs, ys = source.x_test, source.y_test
    probabilities = labellings(yt, 10)
    build = builder(xt.shape[1:], 10)
    common = {"epochs": epochs, "seed": 0}
    fresh_times, shared_times = [], []
    fresh = shared = None
    for _ in range(repeats):
        start = time.perf_counter()
        fresh = {
            name: reverse_validation(
                build, xt, p, (xs, ys), optimizer=keras.optimizers.Adam(1e-3), **common
            )
            for name, p in probabilities.items()
        }
        fresh_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        shared = reverse_validation_scores(
            probabilities,
            build,
            xt,
            (xs, ys),
            make_optimizer=lambda: keras.optimizers.Adam(1e-3),
            **common,
        )
        shared_times.append(time.perf_counter() - start)
    row = {
        "target_examples": int(size),
        "candidates": len(probabilities),
        "epochs": epochs,
        "fresh_seconds": min(fresh_times),
        "shared_seconds": min(shared_times),
        "fresh_all": fresh_times,
        "shared_all": shared_times,
        "shared_over_fresh": min(shared_times) / min(fresh_times),
        "scores_fresh": fresh,
        "scores_shared": shared,
        "identical_scores": fresh == shared,
    }
    print(
        f"{size:6d} target examples: fresh model per candidate "
        f"{row['fresh_seconds']:.1f} s, one shared model {row['shared_seconds']:.1f} s "
        f"({row['shared_over_fresh']:.2f}x), identical scores: "
        f"{row['identical_scores']}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="REVERSE_EPOCHS")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    args = parser.parse_args(argv)
    from keras_transfer.adaptation.reverse import REVERSE_EPOCHS

    if args.quick:
        args.sizes, args.repeats = [64], 1
        args.epochs = args.epochs or 1
    epochs = args.epochs or REVERSE_EPOCHS
    rows = [measure(size, args.repeats, epochs) for size in args.sizes]
    payload = {
        "command": command_line("reverse_validation_time.py", argv),
        "config": {"sizes": args.sizes, "repeats": args.repeats, "epochs": epochs},
        "runs": rows,
    }
    print("wrote", write_results("reverse_validation_time", payload, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
