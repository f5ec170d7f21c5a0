"""Tests of keras_transfer.distillation."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.distillation import Distiller, distillation_loss, ends_in_softmax


def _mlp(classes: int, hidden: int, softmax: bool, seed: int) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.Input((10,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, "relu", kernel_initializer=init))
    layers.append(
        keras.layers.Dense(
            classes, "softmax" if softmax else None, kernel_initializer=init
        )
    )
    return keras.Sequential(layers)


def _np_formula(t, s, y, temperature, alpha):
    def softmax(z):
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    pt, ps = softmax(t / temperature), softmax(s / temperature)
    kl = np.sum(pt * (np.log(pt) - np.log(ps)), -1).mean() * temperature**2
    hard = -np.log(softmax(s)[np.arange(len(y)), y]).mean()
    return alpha * hard + (1 - alpha) * kl, kl


@pytest.mark.parametrize("softmax_outputs", [False, True])
def test_loss_equals_formula_on_fixed_logits(softmax_outputs):
    t = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], "float32")
    s = np.array([[1.0, 1.0, 0.0], [-0.5, 0.3, 1.2]], "float32")
    y = np.array([0, 2])
    expected, kl = _np_formula(t, s, y, 3.0, 0.25)
    np.testing.assert_allclose(distillation_loss(t, s, 3.0), kl, rtol=1e-5)
    teacher = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    student = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    kind = "probabilities" if softmax_outputs else "logits"
    if softmax_outputs:  # the same logits, seen through a softmax
        teacher.add(keras.layers.Softmax())
        student.add(keras.layers.Softmax())
    distiller = Distiller(
        teacher,
        student,
        temperature=3.0,
        alpha=0.25,
        teacher_outputs=kind,
        student_outputs=kind,
    )
    # The teacher sees x=t through its identity; the student's output is y_pred.
    loss = distiller.compute_loss(x=t, y=y, y_pred=student(s))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)


def test_auto_detects_softmax_and_validates():
    assert ends_in_softmax(_mlp(3, 0, True, 0))
    assert not ends_in_softmax(_mlp(3, 0, False, 0))
    with pytest.raises(ValueError, match="temperature"):
        Distiller(_mlp(3, 0, False, 0), _mlp(3, 0, False, 1), temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        Distiller(_mlp(3, 0, False, 0), _mlp(3, 0, False, 1), alpha=1.5)
    d = Distiller(_mlp(3, 0, False, 0), _mlp(3, 0, False, 1))
    with pytest.raises(ValueError, match="loss"):
        d.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="teacher outputs 3, student outputs 5"):
        Distiller(_mlp(3, 0, False, 0), _mlp(5, 0, False, 1))
    other_inputs = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"\(10,\) per example.*\(12,\)"):
        Distiller(_mlp(3, 0, False, 0), other_inputs)


def _problem(seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.0, (4, 10))

    def sample(n):
        y = rng.integers(0, 4, n)
        return (centers[y] + rng.normal(0, 0.9, (n, 10))).astype("float32"), y

    return sample


def test_distilled_student_beats_scratch_twin(tmp_path):
    """Teacher trained on plenty of data; students get 40 examples with noisy labels."""
    keras.utils.set_random_seed(0)
    sample = _problem(0)
    x_big, y_big = sample(2000)
    x_small, y_small = sample(40)
    rng = np.random.default_rng(1)
    flip = rng.random(40) < 0.3
    y_noisy = np.where(flip, rng.integers(0, 4, 40), y_small)
    x_test, y_test = sample(1000)

    teacher = _mlp(4, 32, True, 0)
    teacher.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    teacher.fit(x_big, y_big, epochs=5, batch_size=64, verbose=0)

    scratch = _mlp(4, 16, False, 7)
    twin = keras.models.clone_model(scratch)
    twin.set_weights(scratch.get_weights())
    scratch.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    scratch.fit(x_small, y_noisy, epochs=30, batch_size=8, verbose=0)
    distiller = Distiller(teacher, twin, temperature=4.0, alpha=0.1)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    hist = distiller.fit(x_small, y_noisy, epochs=30, batch_size=8, verbose=0)

    assert set(hist.history) >= {"loss", "hard_loss", "distillation_loss", "accuracy"}
    losses = hist.history["loss"]
    assert 0 < losses[-1] < losses[0]

    def acc(m):
        return float(np.mean(np.argmax(m.predict(x_test, verbose=0), -1) == y_test))

    teacher_acc, scratch_acc, distilled_acc = acc(teacher), acc(scratch), acc(twin)
    assert distilled_acc > scratch_acc + 0.02, (teacher_acc, scratch_acc, distilled_acc)
    # The teacher's weights did not move; the student exports on its own.
    path = tmp_path / "student.keras"
    distiller.student.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x_test[:5], verbose=0),
        twin.predict(x_test[:5], verbose=0),
        atol=1e-6,
    )
