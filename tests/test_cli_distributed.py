"""`keras-transfer train` on a 2-worker cluster on 127.0.0.1 (TF_CONFIG).

Both workers run the same command with the same runs_dir: only the chief
(worker 0) writes runs/<name>/, the other worker leaves nothing behind, and the
chief's run is complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import free_ports

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
    procs = []
    for i in range(2):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env.update(
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
            TMPDIR=str(tmp_path / f"tmp{i}"),
            TF_CONFIG=json.dumps(
                {
                    "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                    "task": {"type": "worker", "index": i},
                }
            ),
        )
        (tmp_path / f"tmp{i}").mkdir()
        log = open(tmp_path / f"log{i}.txt", "w")  # noqa: SIM115
        cmd = [sys.executable, "-c", code, "train", str(tmp_path / "train.yaml")]
        procs.append(
            (
                subprocess.Popen(
                    cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
                ),
                log,
            )
        )
    try:
        codes = [p.wait(timeout=TIMEOUT) for p, _ in procs]
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
    for i, c in enumerate(codes):
        assert c == 0, (tmp_path / f"log{i}.txt").read_text()[-3000:]
    run = tmp_path / "runs" / "multi"
    for name in ("config.yaml", "model.keras", "metrics.json", "classes.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 2
    assert not list(run.rglob("workertemp_*"))
    assert not any((tmp_path / "tmp1").iterdir())  # the worker's folder is gone
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["multi"]
