"""`keras-transfer train` on a 2-worker cluster on 127.0.0.1 (TF_CONFIG).

Both workers run the same command with the same runs_dir: only the chief
(worker 0) writes runs/<name>/, the other worker leaves nothing behind, and the
chief's run is complete.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from helpers import free_ports, run_processes, tf_config

TIMEOUT = 300
SIZE = 16


@pytest.mark.large
def test_cli_train_two_workers_only_the_chief_writes(tmp_path):
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    backbone.save(tmp_path / "tiny.keras")
    cfg = {
        "name": "multi",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 64, "batch_size": 16},
        "model": {"backbone": str(tmp_path / "tiny.keras")},
        "training": {"epochs": 1, "fine_tune_epochs": 1},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    ports = free_ports(2)
    code = (
        "import sys; from keras_transfer.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    commands = {}
    for i in range(2):
        (tmp_path / f"tmp{i}").mkdir()
        cmd = [sys.executable, "-c", code, "train", str(tmp_path / "train.yaml")]
        env = {"TMPDIR": str(tmp_path / f"tmp{i}"), "TF_CONFIG": tf_config(ports, i)}
        commands[str(i)] = (cmd, env)
    run_processes(tmp_path, commands, TIMEOUT, cwd=tmp_path)
    run = tmp_path / "runs" / "multi"
    for name in ("config.yaml", "model.keras", "metrics.json", "classes.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 2
    assert not list(run.rglob("workertemp_*"))
    assert not any((tmp_path / "tmp1").iterdir())  # the worker's folder is gone
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["multi"]
