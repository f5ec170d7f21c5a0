"""Helpers of `adapt`'s result: weight snapshots and the random layers' states."""

import numpy as np

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.adaptation.result import (
    restore,
    restore_seed_states,
    seed_states,
    snapshot,
)


def test_seed_states_bring_back_the_same_random_draws():
    dropout = keras.layers.Dropout(0.5)
    flip = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.RandomFlip()])
    x = np.arange(32, dtype="float32").reshape(2, 4, 4, 1)
    dropout(x, training=True)  # builds the seed generator
    saved = seed_states([dropout, flip, None])
    assert snapshot([dropout]) == [[]]  # get_weights leaves the states out
    first = [np.asarray(dropout(x, training=True)), np.asarray(flip(x, training=True))]
    second = [np.asarray(dropout(x, training=True)), np.asarray(flip(x, training=True))]
    assert not np.array_equal(first[0], second[0])  # the state moved on
    restore([dropout], [[]])  # weights alone do not bring the draws back
    restore_seed_states([dropout, flip, None], saved)
    again = [np.asarray(dropout(x, training=True)), np.asarray(flip(x, training=True))]
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])


def _bars(n=48, seed=0):
    rng = np.random.default_rng(seed)
    ys = np.arange(n) % 2
    xs = np.zeros((n, 12, 12, 1), "float32")
    xs[ys == 0, 2:10, 5:7] = 1.0  # a vertical bar
    xs[ys == 1, 5:7, 2:10] = 1.0  # a horizontal bar
    xt = np.clip(xs + rng.uniform(0, 0.4, xs.shape), 0, 1).astype("float32")
    return xs, ys, xt


def test_a_candidate_trains_the_same_whatever_trained_before_it():
    """The source jitter's draws (and any dropout in the shared layers) restart
    from the warm-up's state for every candidate, as in a standalone run."""
    xs, ys, xt = _bars()

    def run(candidates):
        keras.utils.set_random_seed(0)  # the same encoder weights for both runs
        encoder = keras.Sequential(
            [
                keras.Input((12, 12, 1)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.Dropout(0.3),
                keras.layers.Flatten(),
            ]
        )
        return kt.adapt(
            encoder,
            (xs, ys),
            xt,
            method="auto",
            candidates=candidates,
            selector="ensv",
            target_batchnorm=False,
            epochs=3,
            warmup=1,
            batch_size=16,
            verbose=0,
        )

    first = run(["dann", "source_only"])
    assert first.selection["source_augmentation"].startswith("default (appearance)")
    second = run(["source_only", "dann"])
    np.testing.assert_allclose(
        first.target_probabilities["dann"],
        second.target_probabilities["dann"],
        atol=1e-6,
    )
