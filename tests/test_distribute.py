"""Tests for keras_transfer.distribute.

Multi-device and multi-worker runs happen in subprocesses (tests/dist_worker.py):
logical CPU devices and collective ops must be configured before TensorFlow starts.
Workers talk over 127.0.0.1 only, are bounded by timeouts and killed on failure.
"""

from __future__ import annotations

import json
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers import free_ports, launch_processes, tf_config

from keras_transfer._backend import keras, tf
from keras_transfer.distribute import (
    backup_callback,
    get_strategy,
    global_batch_size,
    keras_fix,
    maybe_distribute,
    num_workers_from_tf_config,
    per_replica_batch_size,
)

WORKER = str(Path(__file__).with_name("dist_worker.py"))
TIMEOUT = 150


def _run_workers(out: Path, args: list[str], n: int = 1, **env: str) -> list[dict]:
    """Runs n workers (n > 1: a MultiWorkerMirrored cluster on 127.0.0.1)."""
    ports = free_ports(n)
    commands = {}
    for i in range(n):
        extra = dict(env)
        if n > 1:
            extra["TF_CONFIG"] = tf_config(ports, i)
        cmd = [sys.executable, WORKER, "--out", str(out), "--index", str(i), *args]
        commands[str(i)] = (cmd, extra)
    launched = launch_processes(out, commands, TIMEOUT)
    models = args[args.index("--model") + 1] if "--model" in args else "classifier"
    results = []
    for i in range(n):
        code, log = launched[str(i)]
        result = {"code": code, "log": log[-3000:]}
        for model in models.split(","):
            path = out / f"result_{i}_{model}.json"
            result[model] = json.loads(path.read_text()) if path.exists() else {}
        results.append(result)
    return results


def _models() -> str:
    """'classifier,dann' when the DA module has DANN, else 'classifier'."""
    try:
        from keras_transfer.adaptation import DANN  # noqa: F401
    except ImportError:
        return "classifier"
    return "classifier,dann"


def _weights(out: Path, index: int, model: str = "classifier") -> list[np.ndarray]:
    with np.load(out / f"weights_{index}_{model}.npz") as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


# ----------------------------------------------------------------- in process


def test_get_strategy_names_and_errors(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert get_strategy("default") is tf.distribute.get_strategy()
    assert get_strategy("auto").num_replicas_in_sync == 1
    mirrored = get_strategy("mirrored", devices=["/cpu:0"])
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert get_strategy(mirrored) is mirrored
    assert get_strategy("mirrored", devices=["/cpu:0"]) is mirrored  # one per process
    with pytest.raises(ValueError, match="Received: strategy='nope'"):
        get_strategy("nope")
    with pytest.raises(ValueError, match="devices"):
        get_strategy("default", devices=["/cpu:0"])


def test_auto_logs_its_choice(monkeypatch, caplog):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}}))
    with caplog.at_level("INFO", logger="keras_transfer.distribute.strategy"):
        get_strategy("auto")
    assert "chose 'default'" in caplog.text
    assert "1 worker(s)" in caplog.text


def test_num_workers_from_tf_config():
    assert num_workers_from_tf_config("") == 0
    cluster = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}}
    assert num_workers_from_tf_config(json.dumps(cluster)) == 3
    with pytest.raises(ValueError, match="Expected TF_CONFIG to be JSON"):
        num_workers_from_tf_config("{not json")


def test_maybe_distribute_scopes():
    with maybe_distribute(None) as strategy:
        assert strategy is tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    with maybe_distribute(mirrored) as strategy:
        assert tf.distribute.get_strategy() is mirrored
        with maybe_distribute(mirrored):  # re-entering the same scope is fine
            variable = keras.Variable(1.0)
    assert strategy is mirrored
    assert isinstance(variable.value, tf.distribute.DistributedValues)
    with pytest.raises(ValueError, match="of type int"):
        with maybe_distribute(3):
            pass


def test_build_classifier_with_a_strategy_name_fits():
    from keras_transfer import builders

    # A backbone built in the scope is used as it is (one built outside is copied
    # in: the next test).
    with maybe_distribute("mirrored"):
        inputs = keras.Input((8, 8, 3))
        backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    model = builders.build_classifier(
        backbone, 2, unfreeze_depth="all", strategy="mirrored"
    )
    assert model.distribute_strategy is get_strategy("mirrored")
    x = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
    history = model.fit(x, np.arange(8) % 2, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_model_built_outside_the_strategy_is_copied_into_it():
    import keras_transfer as kt
    from keras_transfer.distribute import into_scope

    def conv_model():
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.Conv2D(4, 3, name="frozen")(x)
        return keras.Model(inputs, keras.layers.Flatten()(x), name="outside")

    backbone = conv_model()
    backbone.get_layer("frozen").trainable = False
    assert into_scope(backbone) is backbone  # no strategy: nothing to do
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    with mirrored.scope():
        copy = into_scope(backbone)
        assert into_scope(copy) is copy  # already the strategy's
    assert copy is not backbone and not copy.get_layer("frozen").trainable
    for a, b in zip(copy.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Training it there used to fail inside TensorFlow ("colocate_vars_with must
    # only be passed a variable created in this tf.distribute.Strategy.scope()").
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 2
    model = kt.build_classifier(
        conv_model(), 2, unfreeze_depth="all", strategy=mirrored
    )
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])
    result = kt.adapt(
        conv_model(),
        (x, y),
        x + 0.1,
        method="dann",
        epochs=2,
        strategy=mirrored,
        verbose=0,
    )
    assert result.model.output_shape == (None, 2)

    class Plain(keras.Model):  # subclassed, no get_config: cannot be copied
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    plain = Plain()
    plain(np.zeros((1, 3), "float32"))
    with mirrored.scope():
        with pytest.raises(ValueError, match="inside .*maybe_distribute"):
            into_scope(plain)


def test_batch_size_helpers():
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert global_batch_size(32, mirrored) == 32
    assert per_replica_batch_size(64, "default") == 64
    with pytest.raises(ValueError, match="per_replica=0"):
        global_batch_size(0)
    with pytest.raises(ValueError, match="global_batch=2.5"):
        per_replica_batch_size(2.5)


def test_backup_callback(tmp_path):
    assert backup_callback(None) is None
    callback = backup_callback(tmp_path / "backup", save_freq="epoch")
    assert isinstance(callback, keras.callbacks.BackupAndRestore)
    assert callback.backup_dir == str(tmp_path / "backup")


# ----------------------------------------------------------------- subprocesses


@pytest.mark.large
def test_mirrored_two_cpus_matches_one_device(tmp_path):
    """Classifier and DANN (custom train_step): same weights, losses and metrics."""
    models = _models()
    one = tmp_path / "one"
    two = tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with ThreadPoolExecutor(2) as pool:  # both processes at once
        common = ["--model", models]
        single_job = pool.submit(_run_workers, one, ["--strategy", "default", *common])
        mirrored_job = pool.submit(
            _run_workers,
            two,
            ["--strategy", "mirrored", "--logical-cpus", "2", *common],
        )
        [single], [mirrored] = single_job.result(), mirrored_job.result()
    assert single["code"] == 0, single["log"]
    assert mirrored["code"] == 0, mirrored["log"]
    for model in models.split(","):
        assert mirrored[model]["replicas"] == 2
        for a, b in zip(_weights(one, 0, model), _weights(two, 0, model), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=model)
        for key, values in single[model]["history"].items():  # losses and trackers
            np.testing.assert_allclose(
                values, mirrored[model]["history"][key], rtol=1e-4, err_msg=key
            )


@pytest.mark.large
def test_two_workers_end_with_identical_weights(tmp_path):
    """build_classifier + fit and DANN on a 2-worker cluster on 127.0.0.1."""
    models = _models()
    results = _run_workers(
        tmp_path, ["--strategy", "multi_worker", "--model", models], n=2
    )
    for r in results:
        assert r["code"] == 0, r["log"]
    for model in models.split(","):
        for r in results:
            assert r[model]["replicas"] == 2
            assert r[model]["epochs_run"] == [0, 1]
        pairs = zip(_weights(tmp_path, 0, model), _weights(tmp_path, 1, model))
        for a, b in pairs:
            np.testing.assert_array_equal(a, b, err_msg=model)
        assert results[0][model]["history"] == results[1][model]["history"]


@pytest.mark.large
def test_two_workers_fail_without_the_keras_fix(tmp_path):
    """Proves the fix is still needed; when this fails, upstream fixed Keras."""
    if not keras_fix.needed():
        pytest.skip("installed Keras does not have the bug: the fix is a no-op")
    results = _run_workers(
        tmp_path,
        ["--strategy", "multi_worker", "--epochs", "1"],
        n=2,
        KERAS_TRANSFER_MWMS_FIX="0",
    )
    assert all(r["code"] != 0 for r in results)
    assert any("PerReplica" in r["log"] for r in results)


@pytest.mark.large
def test_killed_worker_resumes_from_backup(tmp_path):
    backup = tmp_path / "backup"
    args = ["--epochs", "4", "--backup-dir", str(backup), "--crash-at-epoch", "1"]
    [first] = _run_workers(tmp_path, args)
    assert first["code"] == -signal.SIGKILL, first["log"]
    assert not first["classifier"]  # killed before writing a result
    crashed = json.loads((tmp_path / "crashed_0").read_text())
    assert crashed["epochs_run"] == [0, 1]
    assert backup.exists()
    [second] = _run_workers(tmp_path, args)
    assert second["code"] == 0, second["log"]
    # Epochs 0 and 1 finished before the kill: the restarted run starts at 2.
    assert second["classifier"]["epochs_run"] == [2, 3]
    assert len(second["classifier"]["history"]["loss"]) == 2
    assert not backup.exists()  # deleted once fit finishes
