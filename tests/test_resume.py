"""Interrupted and resumed training ends where an uninterrupted run ends.

Optimizer moments, Dropout's random state and every epoch of the history survive an
interruption (`fine_tune(backup_dir=)`, `ResumableBackup`), with no "Skipping
variable loading" warning.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from helpers import tiny_bn_backbone

from keras_transfer import build_classifier, fine_tune
from keras_transfer._backend import keras, tf
from keras_transfer.finetune import ResumableBackup


def _dataset():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, np.arange(16) % 2)).batch(4)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at: int | None):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def _fine_tune(backup_dir=None, interrupt_at=None):
    keras.utils.set_random_seed(0)
    model = build_classifier(tiny_bn_backbone(), 2, dropout=0.3)
    ds = _dataset()
    history = fine_tune(
        model,
        ds,
        ds,
        head_epochs=3,
        fine_tune_epochs=3,
        fine_tune_learning_rate=1e-3,
        backup_dir=backup_dir,
        callbacks=[_Interrupt(interrupt_at)],
        verbose=0,
    )
    return model, history


@pytest.fixture(scope="module")
def uninterrupted():
    model, history = _fine_tune()
    return (
        [w.copy() for w in model.get_weights()],
        [np.array(v.numpy()) for v in model.optimizer.variables],
        history.history,
    )


# 1: inside the head stage; 3: at the stage boundary; 4: inside the unfrozen stage.
@pytest.mark.parametrize("interrupt_at", [1, 3, 4])
def test_fine_tune_resume_matches_uninterrupted(tmp_path, uninterrupted, interrupt_at):
    weights, optimizer_vars, history = uninterrupted
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        _fine_tune(backup, interrupt_at)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, resumed = _fine_tune(backup)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "Skipping variable loading" in m], messages
    assert not [m for m in messages if "shuffle=True" in m], messages
    assert resumed.epoch == list(range(6))
    for key, values in history.items():
        np.testing.assert_allclose(resumed.history[key], values, rtol=1e-6)
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    got_vars = [np.array(v.numpy()) for v in model.optimizer.variables]
    assert len(got_vars) == len(optimizer_vars) > 2  # moments, not just step and lr
    for got, want in zip(got_vars, optimizer_vars):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_resumable_backup_restores_adam_moments(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = x @ np.ones((3, 2), "float32")

    def make():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4),
                keras.layers.Dropout(0.5),
                keras.layers.Dense(2),
            ]
        )
        model.compile(keras.optimizers.Adam(1e-2), "mse")
        return model

    reference = make()
    reference.fit(x, y, epochs=4, shuffle=False, verbose=0)
    backup = str(tmp_path / "b")
    model = make()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[ResumableBackup(backup), _Interrupt(2)],
        )
    model = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = model.fit(
            x,
            y,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[ResumableBackup(backup)],
        )
    assert not [w for w in caught if "Skipping" in str(w.message)]
    assert h.epoch == [2, 3]
    assert int(model.optimizer.iterations) == int(reference.optimizer.iterations)
    for got, want in zip(model.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=0, atol=1e-6)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_a_finished_backup_leaves_the_users_files(tmp_path):
    # ResumableBackup("proj") once removed the whole folder (Keras's
    # BackupAndRestore does): a user's proj/notes.txt went with it.
    x = np.ones((4, 3), "float32")
    backup = tmp_path / "proj"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    seen = []

    class _Look(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(os.listdir(backup)))

    model.fit(
        x,
        x[:, :2],
        epochs=2,
        verbose=0,
        callbacks=[ResumableBackup(str(backup)), _Look()],
    )
    assert "latest.weights.h5" in seen[-1]  # it did back up there
    assert sorted(os.listdir(backup)) == ["notes.txt"]
    # a folder of its own still goes when the run is done
    own = tmp_path / "own"
    model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[ResumableBackup(str(own))])
    assert not own.exists()
