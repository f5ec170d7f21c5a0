"""The README's multi-machine example, run as written in two local workers.

The code block is read from README.md at test time (not copied), then run in two
processes whose TF_CONFIG names two workers on 127.0.0.1, from the same working
directory, so both get the one shared ``runs/backup``. Worker 1 is killed in the
middle of epoch 2; worker 0 is then killed too (a real cluster manager restarts
every worker); both restart and must resume at epoch 2 and end with identical
weights.

Only test scaffolding is added around the block: ``x_train``/``y_train`` (128
random 32x32 images; the README leaves them to the reader) and a wrapper of
``keras.Model.fit`` that records the epochs run and kills the process at the
batch named by ``KILL_AT``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import free_ports, run_processes, started_processes, tf_config

README = Path(__file__).resolve().parents[1] / "README.md"
TIMEOUT = 240

PRELUDE = """
import json, os, signal
import numpy as np
import keras

rng = np.random.default_rng(0)
x_train = rng.uniform(0, 255, (128, 32, 32, 3)).astype("float32")
y_train = rng.integers(0, 10, 128)
EPOCHS = []
_fit = keras.Model.fit


def _watched_fit(self, *args, callbacks=None, **kwargs):
    kill = os.environ.get("KILL_AT")
    def begin(epoch, logs):
        EPOCHS.append(epoch)
    def batch_end(batch, logs):
        if kill and [EPOCHS[-1], batch] == json.loads(kill):
            os.kill(os.getpid(), signal.SIGKILL)
    watch = keras.callbacks.LambdaCallback(
        on_epoch_begin=begin, on_train_batch_end=batch_end)
    return _fit(self, *args, callbacks=[*(callbacks or []), watch], **kwargs)


keras.Model.fit = _watched_fit
"""

EPILOGUE = """
import tensorflow as keras_transfer_tf
np.savez(os.environ["OUT"] + ".npz", *[np.asarray(w) for w in model.get_weights()])
with open(os.environ["OUT"] + ".json", "w") as f:
    json.dump({"epochs": EPOCHS, "replicas": strategy.num_replicas_in_sync,
               "multi_worker": isinstance(
                   strategy, keras_transfer_tf.distribute.MultiWorkerMirroredStrategy)
               }, f)
"""


def readme_example() -> str:
    """The first python block after the README's 'N machines' sentence."""
    text = README.read_text()
    start = text.index("The same script on 1 CPU, N GPUs or N machines")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block, "README lost its multi-machine example"
    code = block.group(1)
    assert 'get_strategy("auto")' in code and "backup_callback(" in code
    return code


def _script(code: str) -> str:
    # The example's imports stay first; scaffolding may not start TensorFlow
    # before get_strategy (numpy and `import keras` do not).
    return PRELUDE + code + EPILOGUE


def _commands(workdir: Path, script: Path, tag: str, kill_at: dict) -> dict:
    """``helpers.run_processes`` commands of a 2-worker cluster running `script`."""
    ports = free_ports(2)
    commands = {}
    for i in range(2):
        env = {"OUT": str(workdir / f"{tag}_{i}"), "TF_CONFIG": tf_config(ports, i)}
        if i in kill_at:
            env["KILL_AT"] = json.dumps(kill_at[i])
        commands[f"{tag}_{i}"] = ([sys.executable, str(script)], env)
    return commands


def _log(workdir: Path, name: str) -> str:
    return (workdir / f"log_{name}.txt").read_text()[-3000:]


@pytest.mark.large
def test_readme_multi_machine_example_survives_a_killed_worker(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_script(readme_example()))
    backup = tmp_path / "runs" / "backup"

    # Run 1: worker 1 dies after batch 0 of epoch 2 (of 2 steps); worker 0 is
    # stuck in a collective with a dead peer and is killed as a restart would.
    first = _commands(tmp_path, script, "first", {1: [2, 0]})
    with started_processes(tmp_path, first, cwd=tmp_path) as procs:  # one runs/
        assert procs["first_1"].wait(timeout=TIMEOUT) == -signal.SIGKILL, _log(
            tmp_path, "first_1"
        )
        time.sleep(1)  # leaving the block kills worker 0
    assert not (tmp_path / "first_0.json").exists(), _log(tmp_path, "first_0")
    # The chief (worker 0) backed up epochs 0 and 1; nothing else is shared.
    meta = json.loads((backup / "training_metadata.json").read_text())
    assert meta["epoch"] == 2
    assert not list(backup.glob("workertemp_*/*.h5"))

    # Run 2: both restart with the same command and the same backup directory.
    run_processes(
        tmp_path, _commands(tmp_path, script, "second", {}), TIMEOUT, cwd=tmp_path
    )
    results = [json.loads((tmp_path / f"second_{i}.json").read_text()) for i in (0, 1)]
    for r in results:
        assert r["multi_worker"]
        assert r["replicas"] == 2
        assert r["epochs"] == [2, 3, 4]  # resumed after the last completed epoch
    weights = []
    for i in (0, 1):
        with np.load(tmp_path / f"second_{i}.npz") as data:
            weights.append([data[f"arr_{k}"] for k in range(len(data.files))])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not backup.exists()  # removed once fit finished, worker folders too
