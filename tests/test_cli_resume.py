"""`keras-transfer train`: SIGINT mid-training, then `--resume` in a new process.

The interrupted process exits 130 with one line telling how to resume (no
traceback) and the run is marked "interrupted"; the resumed process completes the
run with every epoch in `metrics.json` and the fine-tune stage's optimizer state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

SIZE = 16
HEAD, FINE = 2, 3
INTERRUPT_AT = 3  # an epoch of the fine-tune stage (epochs 2, 3, 4)

# Runs the CLI with one extra callback: when epoch INTERRUPT_AT begins (every
# earlier epoch is backed up), it writes a marker file and waits for the signal.
_DRIVER = textwrap.dedent(
    """
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
)


def _config(tmp_path) -> str:
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    backbone.save(tmp_path / "tiny.keras")
    cfg = {
        "name": "r",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 64, "batch_size": 16},
        "model": {"backbone": str(tmp_path / "tiny.keras")},
        "training": {"epochs": HEAD, "fine_tune_epochs": FINE},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _start(args: list, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _DRIVER, *args],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.large
def test_sigint_then_resume_keeps_every_epoch_and_optimizer_state(tmp_path):
    cfg = _config(tmp_path)
    marker = tmp_path / "marker"
    args = ["train", cfg, "--quiet"]
    proc = _start(args, {"KT_MARKER": str(marker), "KT_AT": str(INTERRUPT_AT)})
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert lines == [
        f"keras-transfer train: interrupted; resume with: "
        f"keras-transfer train {cfg} --quiet --resume"
    ], err
    run = tmp_path / "runs" / "r"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "error" not in info

    proc = _start([*args, "--resume"], {})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Skipping variable loading" not in err, err
    assert "shuffle=True" not in err, err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"] == 1
    history = json.loads((run / "metrics.json").read_text())["history"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history[key]) == HEAD + FINE, (key, history[key])
        assert all(v is not None for v in history[key])
    # The fine-tune stage's Adam continued from its backup: its step count covers
    # all FINE epochs, not only those run after the resume.
    steps_per_epoch = int(marker.read_text()) // (INTERRUPT_AT - HEAD)
    model = _load(run / "model.keras")
    assert int(model.optimizer.iterations) == FINE * steps_per_epoch
    assert len(model.optimizer.variables) > 2  # the moments were saved and restored


def _load(path):
    import keras_transfer

    loader = getattr(keras_transfer, "load_model", None)
    if loader is None:  # before keras_transfer.load_model exists
        from keras_transfer.cli._train import load_model as loader
    return loader(str(path))
