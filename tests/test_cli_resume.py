"""`keras-transfer train`: SIGINT mid-training, then `--resume` in a new process.

The interrupted process exits 130 with one line telling how to resume (no
traceback) and the run is marked "interrupted"; the resumed process completes the
run with every epoch in `metrics.json` and the fine-tune stage's optimizer state.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from helpers import CLI_MAIN, interrupt_cli, process_env

SIZE = 16
HEAD, FINE = 2, 3
INTERRUPT_AT = 3  # an epoch of the fine-tune stage (epochs 2, 3, 4)


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


@pytest.mark.large
def test_sigint_then_resume_keeps_every_epoch_and_optimizer_state(tmp_path):
    cfg = _config(tmp_path)
    args = ["train", cfg, "--quiet"]
    code, log, marker_steps = interrupt_cli(tmp_path, args, at=INTERRUPT_AT)
    assert code == 130, log
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if "interrupted" in line]
    assert lines == [
        f"keras-transfer train: interrupted; resume with: "
        f"keras-transfer train {cfg} --quiet --resume"
    ], log
    run = tmp_path / "runs" / "r"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "error" not in info

    proc = subprocess.run(
        [sys.executable, "-c", CLI_MAIN, *args, "--resume"],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = proc.stderr
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
    steps_per_epoch = marker_steps // (INTERRUPT_AT - HEAD)
    model = _load(run / "model.keras")
    assert int(model.optimizer.iterations) == FINE * steps_per_epoch
    assert len(model.optimizer.variables) > 2  # the moments were saved and restored


def _load(path):
    import keras_transfer

    loader = getattr(keras_transfer, "load_model", None)
    if loader is None:  # before keras_transfer.load_model exists
        from keras_transfer.cli._train import load_model as loader
    return loader(str(path))
