"""Test helpers reused by every public layer and model (keras-hub style)."""

from __future__ import annotations

import contextlib
import os

import numpy as np


def run_config_roundtrip(layer_cls, init_kwargs: dict) -> None:
    """get_config returns every constructor argument; from_config rebuilds it."""
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"{key} missing from get_config()"
        assert config[key] == value, (key, config[key], value)
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config


def run_keras_roundtrip(model, inputs, tmp_path, atol: float = 0.0) -> object:
    """Saves as .keras, reloads, and checks predictions are the same."""
    import keras

    path = os.path.join(str(tmp_path), "model.keras")
    expected = model.predict(inputs, verbose=0)
    model.save(path)
    reloaded = keras.models.load_model(path)
    got = reloaded.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
    return reloaded


def weights_snapshot(weights) -> list[np.ndarray]:
    return [np.array(w.numpy(), copy=True) for w in weights]


def tiny_bn_backbone(input_shape=(16, 16, 3), pretrained=True):
    """A 4-layer CNN backbone with BatchNormalization (a stand-in for a pretrained net).

    With ``pretrained=True`` its BatchNorm layers hold statistics that are not the
    initial mean 0 / variance 1 (close to them, deterministic), as a pretrained
    network's are: `train_batchnorm="auto"` keeps them frozen and
    `batchnorm_momentum="auto"` leaves their momentum. ``pretrained=False``: the
    statistics of a network built without pretrained weights.
    """
    import keras
    import numpy as np

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv3")(x)
    model = keras.Model(inputs, x, name="tiny_backbone")
    if pretrained:
        steps = np.linspace(-0.01, 0.01, 8).astype("float32")
        for name in ("bn1", "bn2"):
            layer = model.get_layer(name)
            layer.moving_mean.assign(steps)
            layer.moving_variance.assign(1.0 + np.abs(steps))
    return model


def run_serialization_test(
    obj, tmp_path, *, inputs=None, model=None, atol=1e-6, expected_config=None
):
    """keras-hub's `run_serialization_test` for every public keras-transfer object.

    1. Config round trip through Keras's registry: `serialize_keras_object` gives a
       JSON-able dict; `deserialize_keras_object` rebuilds the same class with the
       same `get_config()`.
    2. `.keras` round trip (when `inputs` is given): `model` (or, for a layer, a
       functional model around it) is saved, reloaded with
       `keras_transfer.load_model`, and must give identical outputs on `inputs`;
       the reloaded model holds an object of the same class and config.

    `expected_config` (the non-default constructor arguments of the case) must be
    in `get_config()` under the same names: a dropped argument would otherwise
    round-trip as its default unnoticed.

    Losses, metrics and schedules are compared by value on a compiled `model`
    instead (see `compiled_roundtrip`).

    Returns:
        The reloaded model, or None without `inputs`.
    """
    import json

    import keras

    import keras_transfer

    for key, value in (expected_config or {}).items():
        assert _plain(obj.get_config().get(key)) == _plain(value), (key, value)
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"].startswith("keras_transfer>"), config
    text = json.dumps(config)  # raises on a value that is not JSON
    clone = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(clone) is type(obj)
    assert _plain(clone.get_config()) == _plain(obj.get_config())
    if inputs is None:
        return None
    if model is None:
        tensor_inputs = keras.Input(
            shape=np.shape(inputs)[1:], dtype=np.asarray(inputs).dtype.name
        )
        model = keras.Model(tensor_inputs, obj(tensor_inputs))
    expected = model.predict(inputs, verbose=0)
    os.makedirs(str(tmp_path), exist_ok=True)
    path = os.path.join(str(tmp_path), "roundtrip.keras")
    model.save(path)
    reloaded = keras_transfer.load_model(path)
    got = reloaded.predict(inputs, verbose=0)
    for a, b in zip(_flat(got), _flat(expected)):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    same = [
        layer
        for layer in reloaded._flatten_layers(include_self=True)
        if type(layer) is type(obj)
    ]
    assert same, f"no {type(obj).__name__} in the reloaded model"
    assert _plain(same[0].get_config()) == _plain(obj.get_config()) or len(same) > 1
    return reloaded


def compiled_roundtrip(tmp_path, *, loss=None, metric=None, learning_rate=1e-3):
    """Saves a tiny model compiled with `loss`/`metric`/`learning_rate`; reloads it.

    Returns:
        `(model, reloaded)`, both evaluated on the same data, so callers compare
        losses, metric values and the reloaded optimizer's schedule.
    """
    import keras

    import keras_transfer

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss or "sparse_categorical_crossentropy",
        metrics=[metric] if metric is not None else None,
    )
    path = os.path.join(str(tmp_path), "compiled.keras")
    model.save(path)
    return model, keras_transfer.load_model(path)


def _flat(value):
    if isinstance(value, dict):
        return [np.asarray(value[k]) for k in sorted(value)]
    if isinstance(value, list | tuple):
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def _plain(config):
    """A config with tuples as lists (JSON does not keep tuples)."""
    import json

    return json.loads(json.dumps(config, default=str))


def free_ports(n: int) -> list[int]:
    """``n`` free localhost ports (for TF_CONFIG / KerasTuner worker tests)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def process_env(**extra: str) -> dict[str, str]:
    """This environment for a child process: no cluster variables, quiet TF on CPU.

    ``TF_CONFIG`` and ``KERASTUNER_*`` of the test run itself are dropped (a
    process of a test cluster gets only its own, in ``extra``).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "TF_CONFIG" and not k.startswith("KERASTUNER_")
    }
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **extra)
    return env


def run_processes(
    log_dir, commands: dict, timeout: float, *, cwd=None
) -> dict[str, str]:
    """Starts one process per name at once (a test cluster), waits for all of them.

    `launch_processes`, and every process must exit with status 0.

    Args:
        log_dir: path. Folder of the logs.
        commands: dict. ``name -> (argv, extra environment variables)``.
        timeout: float. Seconds to wait for each process.
        cwd: path or None. Working directory of every process; None: this one's.

    Returns:
        ``name -> log text``.

    Raises:
        AssertionError: a process exited with a non-zero status (its log's tail).
    """
    results = launch_processes(log_dir, commands, timeout, cwd=cwd)
    for name, (code, log) in results.items():
        assert code == 0, f"{name} exited {code}:\n{log[-4000:]}"
    return {name: log for name, (_, log) in results.items()}


def launch_processes(
    log_dir, commands: dict, timeout: float, *, cwd=None
) -> dict[str, tuple[int, str]]:
    """Starts one process per name at once, waits for all; exit statuses unchecked.

    For tests that expect a process to fail (`run_processes` asserts they all
    succeed). Each process gets `process_env` plus its own variables and logs
    stdout and stderr to ``log_dir/log_<name>.txt``. Whatever happens (a timeout,
    a failed wait), no process outlives the call.

    Args:
        log_dir: path. Folder of the logs.
        commands: dict. ``name -> (argv, extra environment variables)``.
        timeout: float. Seconds to wait for each process.
        cwd: path or None. Working directory of every process; None: this one's.

    Returns:
        ``name -> (exit status, log text)``; a process killed by a signal has
        the negative signal number as its status.

    Raises:
        subprocess.TimeoutExpired: a process ran longer than `timeout`.
    """
    from pathlib import Path

    with started_processes(log_dir, commands, cwd=cwd) as procs:
        codes = {name: p.wait(timeout=timeout) for name, p in procs.items()}
    return {
        name: (codes[name], (Path(log_dir) / f"log_{name}.txt").read_text())
        for name in commands
    }


@contextlib.contextmanager
def started_processes(log_dir, commands: dict, *, cwd=None):
    """Starts one process per name at once and yields ``name -> Popen``.

    The caller waits for (or kills) whichever it needs, e.g. one worker of a
    cluster; on leaving the block every process still running is killed and
    reaped, and the logs (``log_dir/log_<name>.txt``) are closed. The launcher
    behind `launch_processes` and `run_processes`.

    Args:
        log_dir: path. Folder of the logs.
        commands: dict. ``name -> (argv, extra environment variables)``.
        cwd: path or None. Working directory of every process; None: this one's.

    Yields:
        ``name -> subprocess.Popen``.
    """
    import subprocess
    from pathlib import Path

    procs, logs = {}, []
    try:
        for name, (argv, extra) in commands.items():
            log = open(Path(log_dir) / f"log_{name}.txt", "w")  # noqa: SIM115
            logs.append(log)
            procs[name] = subprocess.Popen(
                [str(a) for a in argv],
                env=process_env(**extra),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for log in logs:
            log.close()


# `keras-transfer` without the console script (``python -c CLI_MAIN args...``).
CLI_MAIN = (
    "import sys; from keras_transfer.cli import main; sys.exit(main(sys.argv[1:]))"
)

# The CLI with one extra `fine_tune` callback: when epoch ``$KT_AT`` begins (every
# earlier epoch is backed up), it writes the optimizer's step count to ``$KT_MARKER``
# and waits for the SIGINT that `interrupt_cli` sends.
CLI_WITH_MARKER = """
import os, signal, sys, time
# A parent started in the background by a non-interactive shell passes SIGINT
# on as ignored, and Python then never raises KeyboardInterrupt: restore it.
signal.signal(signal.SIGINT, signal.default_int_handler)
import keras_transfer.finetune as ft
from keras_transfer._backend import keras

marker, at = os.environ.get("KT_MARKER"), int(os.environ.get("KT_AT", "-1"))
original = ft.fine_tune


class Marker(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if marker and epoch == at:
            steps = int(self.model.optimizer.iterations)
            open(marker, "w").write(str(steps))
            time.sleep(600)  # the SIGINT ends it


def fine_tune(*args, callbacks=None, **kwargs):
    return original(*args, callbacks=[*(callbacks or []), Marker()], **kwargs)


ft.fine_tune = fine_tune
from keras_transfer.cli import main

sys.exit(main(sys.argv[1:]))
"""


def interrupt_cli(
    log_dir, args: list, *, at: int, cwd=None, start_timeout: float = 300
) -> tuple[int, str, int]:
    """Runs ``keras-transfer *args`` in its own process and Ctrl-C's it at epoch `at`.

    The process is the CLI with a marker callback (`CLI_WITH_MARKER`) in every
    `fine_tune` stage; when epoch `at` of a stage begins, the helper sends SIGINT,
    as a user pressing Ctrl-C would, and waits for the process to exit.

    Args:
        log_dir: path. Folder of the log (``log_interrupted.txt``) and the marker.
        args: list. The CLI's arguments.
        at: int. The epoch (of the ``fit`` call) at which to interrupt.
        cwd: path or None. Working directory; None: this one's.
        start_timeout: float. Seconds to wait for the marker.

    Returns:
        ``(exit status, log text (stdout and stderr), optimizer steps at the
        marker)``.

    Raises:
        AssertionError: the process ended or timed out before reaching epoch `at`.
    """
    import signal
    import sys
    import time
    from pathlib import Path

    marker = Path(log_dir) / "marker"
    log_path = Path(log_dir) / "log_interrupted.txt"
    command = {
        "interrupted": (
            [sys.executable, "-c", CLI_WITH_MARKER, *args],
            {"KT_MARKER": str(marker), "KT_AT": str(at)},
        )
    }
    with started_processes(log_dir, command, cwd=cwd) as procs:
        proc = procs["interrupted"]
        deadline = time.time() + start_timeout
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), log_path.read_text()[-4000:]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    return code, log_path.read_text(), int(marker.read_text())


def tf_config(ports: list[int], index: int) -> str:
    """``TF_CONFIG`` of worker `index` of a cluster of workers on 127.0.0.1 `ports`."""
    import json

    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def two_gaussian_domains(n=240, seed=0, k=3):
    """k Gaussian classes in 4-D; the target is the source shifted and scaled.

    Returns ``((xs, ys), (xt, yt))``: the small labelled source and target the
    `adapt` tests train on in seconds.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(k, 4))

    def make(shift):
        y = rng.integers(0, k, n)
        x = centres[y] + rng.normal(0, 1.0, (n, 4))
        return (x * (1.0 + 0.3 * shift) + 2.0 * shift).astype("float32"), y

    return make(0.0), make(1.0)


def tiny_dense_encoder():
    """A one-layer encoder for `two_gaussian_domains` (4 features in, 16 out)."""
    from keras_transfer._backend import keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, "relu")])
