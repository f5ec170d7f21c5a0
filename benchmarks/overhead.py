"""Step-time overhead of a `build_classifier` model vs the same network by hand.

Both models have identical layers and weights: a small CNN backbone, global average
pooling, dropout and a softmax output. The builder nests the backbone as a sub-model
(and adds nothing else); the hand-written one is a flat functional model. Train steps
are timed in interleaved blocks in one process so machine noise hits both alike.

Usage: python benchmarks/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import write_results  # noqa: E402

from keras_transfer import build_classifier  # noqa: E402
from keras_transfer._backend import keras  # noqa: E402


def backbone_layers():
    return [
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c1"),
        keras.layers.Conv2D(
            32, 3, strides=2, padding="same", activation="relu", name="c2"
        ),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c3"),
        keras.layers.Conv2D(
            64, 3, strides=2, padding="same", activation="relu", name="c4"
        ),
    ]


def make_models(shape, num_classes):
    inputs = keras.Input(shape)
    x = inputs
    for layer in backbone_layers():
        x = layer(x)
    backbone = keras.Model(inputs, x, name="backbone")
    built = build_classifier(
        backbone, num_classes, unfreeze_depth="all", dropout=0.2, learning_rate=1e-3
    )
    inputs = keras.Input(shape)
    x = inputs
    for layer in backbone_layers():
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    hand = keras.Model(inputs, outputs, name="hand_written")
    hand.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    hand.set_weights(built.get_weights())
    return built, hand


def time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    blocks, steps = (4, 10) if args.quick else (10, 30)
    keras.utils.set_random_seed(0)
    built, hand = make_models((32, 32, 3), 10)
    assert built.count_params() == hand.count_params()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 64)
    for model in (built, hand):  # trace and warm up
        time_steps(model, x, y, 3)
    # Alternate single steps (order swapped every round) so load from other
    # processes hits both models alike; compare medians of per-step times.
    built_t, hand_t = [], []
    for i in range(blocks * steps):
        pair = [(built, built_t), (hand, hand_t)]
        for model, times in pair if i % 2 == 0 else pair[::-1]:
            times.append(time_steps(model, x, y, 1))
    ratio = statistics.median(built_t) / statistics.median(hand_t)
    chunk = steps
    ratios = [
        statistics.median(built_t[j : j + chunk])
        / statistics.median(hand_t[j : j + chunk])
        for j in range(0, len(built_t), chunk)
    ]
    result = {
        "builder_step_ms": 1e3 * statistics.median(built_t),
        "hand_written_step_ms": 1e3 * statistics.median(hand_t),
        "ratio_median": ratio,
        "ratio_per_block": ratios,
        "target": 1.02,
        "batch_size": 64,
        "blocks": blocks,
        "steps_per_block": steps,
    }
    path = write_results("overhead", result)
    print(
        f"builder {result['builder_step_ms']:.2f} ms/step, hand-written "
        f"{result['hand_written_step_ms']:.2f} ms/step, ratio {ratio:.3f} "
        f"(target <= 1.02); per block {[round(r, 3) for r in ratios]}"
    )
    print(f"results: {path}")
    return result


if __name__ == "__main__":
    main()
