"""TF_CONFIG parsing, the chief/worker write rule and the cluster-aware backup.

Everything here runs in this process without a cluster: a worker's view is
simulated by setting TF_CONFIG (the backup reads it, not the strategy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.distribute import (
    backup_callback,
    cluster,
    get_strategy,
    is_chief,
    parse_tf_config,
    write_dir,
)
from keras_transfer.finetune import ResumableBackup

TWO = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


def _cfg(task_type="worker", index=0, cluster_=None):
    return json.dumps(
        {"cluster": cluster_ or TWO, "task": {"type": task_type, "index": index}}
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("{not json", "to be JSON"),
        ("[1, 2]", "a JSON object"),
        (json.dumps({"cluster": {"chief": ["a:1"]}}), 'names a "worker" list'),
        (json.dumps({"task": {"type": "worker", "index": 0}}), '"worker" list'),
        (_cfg(index=2), r"index in \[0, 1\] for its 2 worker"),
        (_cfg(index=-1), r"index in \[0, 1\]"),
        (_cfg("chief", 0), r"index in \[0, -1\] for its 0 chief"),
        (_cfg("evaluator", 0), "\"task\" of type \\('chief', 'worker'\\)"),
        (_cfg("ps", 0), "of type"),
        (json.dumps({"cluster": TWO}), '"task" for this process'),
        (json.dumps({"cluster": {**TWO, "ps": ["c:3"]}}), "ps/evaluator"),
    ],
)
def test_bad_tf_config_names_the_variable(value, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_tf_config(value)
    assert "TF_CONFIG" in str(info.value)
    assert "Received: TF_CONFIG=" in str(info.value)


def test_bad_tf_config_fails_in_get_strategy_before_training(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _cfg(index=5))
    for name in ("auto", "multi_worker"):
        with pytest.raises(ValueError, match="TF_CONFIG"):
            get_strategy(name)


def test_chief_rule_and_write_dir(tmp_path):
    assert parse_tf_config("") is None
    assert is_chief("") and is_chief(json.dumps({"cluster": {"worker": ["a:1"]}}))
    assert is_chief(_cfg("worker", 0))
    assert not is_chief(_cfg("worker", 1))
    with_chief = {"chief": ["c:0"], **TWO}
    assert is_chief(_cfg("chief", 0, with_chief))
    assert not is_chief(_cfg("worker", 0, with_chief))
    spec = parse_tf_config(_cfg("worker", 1, with_chief))
    assert (spec.num_workers, spec.task_type, spec.task_index) == (3, "worker", 1)
    assert write_dir(tmp_path, _cfg("worker", 0)) == str(tmp_path)
    assert write_dir(tmp_path, _cfg("worker", 1)) == str(tmp_path / "workertemp_1")


def test_remove_backup_leaves_a_worker_folder_then_last_one_out(tmp_path):
    shared = tmp_path / "backup"
    (shared / "workertemp_1").mkdir(parents=True)
    (shared / "workertemp_1" / "latest.weights.h5").write_text("w")
    (shared / "latest.weights.h5").write_text("c")
    (shared / "training_metadata.json.bkp").write_text("c")
    cluster.remove_backup(shared, shared)  # chief first: worker still saving
    assert sorted(os.listdir(shared)) == [cluster.CHIEF_DONE, "workertemp_1"]
    cluster.remove_backup(shared, shared / "workertemp_1")  # worker last
    assert not shared.exists()


def test_remove_backup_keeps_what_is_not_the_backups(tmp_path):
    # A backup_dir shared with the user's own files: only the backup goes.
    shared = tmp_path / "proj"
    (shared / "photos").mkdir(parents=True)
    (shared / "notes.txt").write_text("mine")
    for name in ("latest.weights.h5", "training_metadata.json", "random_states.npz"):
        (shared / name).write_text("backup")
    cluster.remove_backup(shared, shared)
    assert sorted(os.listdir(shared)) == ["notes.txt", "photos"]
    # with a worker still saving: the marker, then the worker leaves the user's
    (shared / "workertemp_1").mkdir()
    (shared / "latest.weights.h5").write_text("backup")
    cluster.remove_backup(shared, shared)
    assert cluster.CHIEF_DONE in os.listdir(shared)
    cluster.remove_backup(shared, shared / "workertemp_1")
    assert sorted(os.listdir(shared)) == ["notes.txt", "photos"]


def test_a_worker_done_first_leaves_the_shared_folder_to_the_chief(tmp_path):
    # The worker finished while the chief had created the folder but not yet
    # saved into it: removing the empty folder then made the chief's save fail
    # (2-worker CLI train, "Unable to synchronously create file").
    shared = tmp_path / "backup"
    (shared / "workertemp_1").mkdir(parents=True)
    cluster.remove_backup(shared, shared / "workertemp_1")  # worker first
    assert shared.is_dir() and not os.listdir(shared)
    (shared / "latest.weights.h5").write_text("c")  # the chief's save still lands
    cluster.remove_backup(shared, shared)  # chief last: nothing of a worker left
    assert not shared.exists()


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dropout(0.3), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def _fit(model, backup, epochs=4):
    x = np.random.default_rng(0).random((16, 3)).astype("float32")
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, _: seen.append(e))
    callbacks = [backup, record]
    model.fit(x, x[:, :2], epochs=epochs, verbose=0, callbacks=callbacks)
    return seen


def test_non_chief_writes_nothing_shared_and_restores_the_chiefs_backup(
    tmp_path, monkeypatch
):
    shared = tmp_path / "backup"
    saved_dirs = []
    original = ResumableBackup._save_model

    def spy(self):
        original(self)
        saved_dirs.append((self.backup_dir, os.path.exists(self.backup_dir)))

    monkeypatch.setattr(ResumableBackup, "_save_model", spy)
    # The chief (worker 0) runs 2 epochs and "dies": its backup stays in `shared`.
    monkeypatch.setenv("TF_CONFIG", _cfg("worker", 0))
    chief = _model()
    callback = backup_callback(shared)
    callback.set_model(chief)
    callback.on_train_end = lambda logs=None: None  # a killed process cleans nothing
    assert _fit(chief, callback, epochs=2) == [0, 1]
    assert json.loads((shared / "training_metadata.json").read_text())["epoch"] == 2
    assert (shared / "random_states.npz").exists()
    chief_files = {p: p.stat().st_mtime_ns for p in shared.iterdir()}
    # Worker 1 restarts with the same shared path: it resumes at the chief's
    # epoch with the chief's weights, and never writes into `shared`.
    monkeypatch.setenv("TF_CONFIG", _cfg("worker", 1))
    worker = _model()
    restored = []
    probe = keras.callbacks.LambdaCallback(
        on_train_begin=lambda _: restored.append(
            [np.array(w) for w in worker.get_weights()]
        )
    )
    x = np.random.default_rng(0).random((16, 3)).astype("float32")
    saved_dirs.clear()
    worker.fit(
        x, x[:, :2], epochs=4, verbose=0, callbacks=[backup_callback(shared), probe]
    )
    for a, b in zip(restored[0], chief.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert saved_dirs == [(str(shared / "workertemp_1"), False)] * 2  # epochs 2, 3
    assert {p: p.stat().st_mtime_ns for p in shared.iterdir()} == chief_files
    # The chief restarts too, finishes and removes the shared backup.
    monkeypatch.setenv("TF_CONFIG", _cfg("worker", 0))
    assert _fit(_model(), backup_callback(shared)) == [2, 3]
    assert not shared.exists()


def test_backup_callback_is_the_resumable_backup(tmp_path):
    callback = backup_callback(tmp_path / "b", save_freq=2, delete_checkpoint=False)
    assert isinstance(callback, ResumableBackup)
    assert callback.save_freq == 2 and not callback.delete_checkpoint


def test_multi_worker_after_the_runtime_started_says_what_to_move():
    code = textwrap.dedent(
        f"""
        import os
        os.environ["TF_CONFIG"] = {_cfg("worker", 0)!r}
        import tensorflow as tf
        from keras_transfer.distribute import get_strategy
        tf.constant(1.0)  # starts the runtime
        try:
            get_strategy("auto")
        except RuntimeError as err:
            print("ERROR:", err)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    line = [s for s in out.stdout.splitlines() if s.startswith("ERROR:")]
    assert line, out.stderr[-2000:]
    assert "TF_CONFIG names 2 workers" in line[0]
    assert 'Move `strategy = get_strategy("auto")`' in line[0]
    assert "top of the script" in line[0]


def test_auto_does_not_start_the_runtime():
    code = textwrap.dedent(
        """
        from keras_transfer.distribute import cluster, get_strategy
        from keras_transfer import build_classifier  # noqa: F401 (README imports)
        get_strategy("auto")
        print("STARTED:", cluster.runtime_initialized())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "STARTED: False" in out.stdout, out.stderr[-2000:]


def test_fine_tune_backup_dir_non_chief_writes_only_its_temp_folder(
    tmp_path, monkeypatch
):
    from keras_transfer import build_classifier, fine_tune
    from keras_transfer import finetune as ft

    written = []
    original = ft._EpochLog.on_epoch_end

    def spy(self, epoch, logs=None):
        original(self, epoch, logs)
        written.append(os.path.dirname(self.path))

    monkeypatch.setattr(ft._EpochLog, "on_epoch_end", spy)
    monkeypatch.setenv("TF_CONFIG", _cfg("worker", 1))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    model = build_classifier(backbone, 2, unfreeze_depth="all")
    x = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
    shared = tmp_path / "backup"
    history = fine_tune(
        model,
        (x, np.arange(8) % 2),
        head_epochs=1,
        fine_tune_epochs=1,
        backup_dir=str(shared),
        verbose=0,
    )
    assert history.epoch == [0, 1]
    assert written == [str(shared / "workertemp_1")] * 2
    # no file of the worker's in the shared folder; the empty stage folders are
    # the chief's to remove (a worker never removes them before the chief is done)
    assert not shared.exists() or not [p for p in shared.rglob("*") if p.is_file()]
