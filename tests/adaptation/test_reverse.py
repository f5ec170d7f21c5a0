import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.adaptation.reverse import (
    reverse_validation,
    reverse_validation_scores,
)


def _blobs(seed: int = 0, shift: float = 0.0):
    """Two Gaussian classes in 4-D; the target is the source shifted."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 4)).astype("float32")
    x[:, 0] += np.where(y == 1, 2.0, -2.0)
    return x + shift, y


def _build():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])


def test_a_consistent_labelling_scores_above_a_swapped_one():
    xs, ys = _blobs(0)
    xt, yt = _blobs(1, shift=0.5)
    right = np.eye(2)[yt]
    swapped = np.eye(2)[1 - yt]
    half = np.eye(2)[np.where(np.arange(300) % 2 == 0, yt, 1 - yt)]
    scores = reverse_validation_scores(
        {"right": right, "swapped": swapped, "half": half},
        _build,
        xt,
        (xs, ys),
        make_optimizer=lambda: keras.optimizers.Adam(0.05),
        epochs=10,
        batch_size=32,
    )
    assert scores["right"] > 0.9
    assert scores["swapped"] < 0.1
    assert scores["swapped"] < scores["half"] < scores["right"]


def test_same_inputs_same_score_and_max_source_subsamples():
    xs, ys = _blobs(0)
    xt, yt = _blobs(1, shift=0.5)
    p = np.eye(2)[yt]
    a = reverse_validation(_build, xt, p, (xs, ys), epochs=3, max_source=50)
    b = reverse_validation(_build, xt, p, (xs, ys), epochs=3, max_source=50)
    assert a == b
    # 50 examples: the accuracy is a multiple of 1/50
    assert round(a * 50, 6) == round(a * 50)


def test_one_reverse_model_scores_as_a_fresh_model_per_labelling(monkeypatch):
    """The scores share one model, optimizer and training graph, and each equals
    `reverse_validation` with a fresh model and a fresh optimizer: the weights and
    the optimizer's moments and step count are reset before every fit."""
    xs, ys = _blobs(0)
    xt, yt = _blobs(1, shift=0.5)
    noisy = np.where(np.arange(300) % 3 == 0, 1 - yt, yt)
    labellings = {"a": np.eye(2)[yt], "b": np.eye(2)[1 - yt], "c": np.eye(2)[noisy]}
    made, traced = [], []

    def make():
        made.append(keras.optimizers.Adam(1e-2))
        return made[-1]

    make_train = keras.Model.make_train_function

    def counting(self, *args, **kwargs):
        if self.train_function is None:
            traced.append(self.name)
        return make_train(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "make_train_function", counting)
    scores = reverse_validation_scores(
        labellings, _build, xt, (xs, ys), make_optimizer=make, epochs=2
    )
    assert len(made) == 1 and len(traced) == 1
    assert made[0].iterations.numpy() == 2 * 5  # the last fit's steps only
    for name, p in labellings.items():
        alone = reverse_validation(
            _build, xt, p, (xs, ys), optimizer=keras.optimizers.Adam(1e-2), epochs=2
        )
        assert scores[name] == alone, name
    assert len(set(scores.values())) == 3  # three labellings, three scores
    assert reverse_validation_scores({}, _build, xt, (xs, ys)) == {}


@pytest.mark.parametrize(
    "probabilities, source, epochs, match",
    [
        (np.ones((300,)), None, 1, "shape"),
        (np.ones((300, 1)), None, 1, "at least two"),
        (np.ones((299, 2)), None, 1, "one row"),
        (np.ones((300, 2)), "xy", 1, r"tuple \(x, y\)"),
        (np.ones((300, 2)), (np.ones((5, 4)), np.ones(4)), 1, "as many source"),
        (np.ones((300, 2)), None, 0, "epochs >= 1"),
    ],
)
def test_bad_input_is_refused_before_training(probabilities, source, epochs, match):
    xs, ys = _blobs(0)
    xt, _ = _blobs(1)
    built = []
    with pytest.raises(ValueError, match=match):
        reverse_validation(
            lambda: built.append(1) or _build(),
            xt,
            probabilities,
            (xs, ys) if source is None else source,
            epochs=epochs,
        )
    assert not built


def test_raw_text_inputs_train_the_reverse_model():
    """Keras's array adapter refuses NumPy strings: text goes through tf.data."""
    words = np.array(["good", "great", "fine", "bad", "awful", "poor"])
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = [" ".join(rng.choice(words[:3] if t else words[3:], 3)) for t in y]
        return np.array(x), y

    (xs, ys), (xt, yt) = make(80), make(80)
    vectorize = keras.layers.TextVectorization(max_tokens=10, output_mode="multi_hot")
    vectorize.adapt(xs)

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((), dtype="string")
        return keras.Model(inputs, keras.layers.Dense(2, "softmax")(vectorize(inputs)))

    fast = {"epochs": 10, "batch_size": 16}
    right = reverse_validation(
        build, xt, np.eye(2)[yt], (xs, ys), optimizer=keras.optimizers.Adam(0.1), **fast
    )
    swapped = reverse_validation(
        build,
        xt,
        np.eye(2)[1 - yt],
        (xs, ys),
        optimizer=keras.optimizers.Adam(0.1),
        **fast,
    )
    assert right > 0.9 and swapped < 0.1


@pytest.mark.large
def test_reverse_scores_again_reproduces_adapts_own_scores():
    import keras_transfer as kt
    from keras_transfer.adaptation import split_source
    from keras_transfer.adaptation.pipeline import reverse_scores_again

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 4))
    ys = rng.integers(0, 3, 150)
    xs = (centres[ys] + rng.normal(size=(150, 4))).astype("float32")
    xt = (centres[rng.integers(0, 3, 90)] + 1.0).astype("float32")
    xt += rng.normal(size=xt.shape).astype("float32")
    keras.utils.set_random_seed(1)
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    result = kt.adapt(
        encoder,
        (xs, ys),
        xt,
        candidates=["source_only", "mcc"],
        epochs=2,
        seed=2,
        verbose=0,
    )
    xs_tr, ys_tr, xs_val, ys_val = split_source(xs, ys.astype("int64"), 0.15, 2)
    source = (np.concatenate([xs_tr, xs_val]), np.concatenate([ys_tr, ys_val]))
    before = result.model.get_weights()
    again = reverse_scores_again(
        result, result.target_probabilities, xt, source, seed=2
    )
    for name, value in again.items():
        assert value == pytest.approx(
            result.selection["candidates"][name]["scores"]["rv"], abs=1e-6
        )
    # the returned model is left as it was
    for a, b in zip(before, result.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    plain = kt.adapt(
        encoder, (xs, ys), xt, method="mcc", epochs=1, selector="ensv", verbose=0
    )
    with pytest.raises(ValueError, match="computed reverse validation"):
        reverse_scores_again(plain, plain.target_probabilities, xt, source)
