"""`AdaptBackup` in a cluster: every worker reads the chief's backup, only the chief
writes it (TF_CONFIG set in-process; the cluster itself is not started here, see
tests/cli/test_cli_adapt_multiworker.py for two real workers)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import keras_transfer as kt
from keras_transfer._backend import keras

CLUSTER = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


def _domains(n=90, k=3):
    rng = np.random.default_rng(0)
    ys = np.arange(n) % k
    xs = rng.normal(size=(n, 4)).astype("float32") + ys[:, None]
    xt = rng.normal(size=(n, 4)).astype("float32") + 0.5 + (np.arange(n) % k)[:, None]
    return (xs, ys), xt


def _encoder():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])


def _tree(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _as(monkeypatch, index):
    task = {"type": "worker", "index": index}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": task}))


class _Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if self.model.name == "adapt_dann" and epoch == 1:
            raise KeyboardInterrupt


def test_worker_resumes_from_the_chief_backup_and_writes_nothing(tmp_path, monkeypatch):
    (xs, ys), xt = _domains()
    backup = tmp_path / "backup"
    kwargs = dict(method="dann", epochs=5, warmup=2, verbose=0, seed=1)
    _as(monkeypatch, 0)  # the chief: writes the shared folder
    keras.utils.set_random_seed(1)
    with pytest.raises(KeyboardInterrupt):
        kt.adapt(
            _encoder(),
            (xs, ys),
            xt,
            backup_dir=str(backup),
            callbacks=[_Stop()],
            **kwargs,
        )
    chief_files = _tree(backup)
    assert "state.json" in chief_files and "dann/latest.weights.h5" in chief_files

    # Every worker restarted: each resumes from the chief's backup (warm-up and
    # the interrupted phase), the worker first, writing nothing there.
    results = {}
    for index in (1, 0):
        _as(monkeypatch, index)
        keras.utils.set_random_seed(1)
        results[index] = kt.adapt(
            _encoder(), (xs, ys), xt, backup_dir=str(backup), **kwargs
        )
        assert len(results[index].history.epoch) == 5
        if index == 1:
            assert _tree(backup) == chief_files
            assert not list(backup.rglob("workertemp_*"))
    for a, b in zip(
        results[0].model.get_weights(), results[1].model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert results[0].history.history == results[1].history.history
    assert not backup.exists()  # the chief finished last: the folder is gone
