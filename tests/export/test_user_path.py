"""The user's path, each command in its own process: train at 24 px -> evaluate ->
export (float32, int8, SavedModel) -> predict on the .keras, the .tflite and the
SavedModel, without repeating the image size or naming any data for export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SIZE = 24


def _cli(*args: str, cwd: Path) -> str:
    exe = shutil.which("keras-transfer")
    command = [exe] if exe else [sys.executable, "-c", _MAIN]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert result.returncode == 0, (
        f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


_MAIN = "import sys; from keras_transfer.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.large
def test_train_evaluate_export_predict_in_separate_processes(tmp_path):
    from PIL import Image

    from keras_transfer._backend import keras

    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for c, name in enumerate(["cat", "dog", "owl"]):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 40, (40, 30, 3)) + 100 * c
            Image.fromarray(img.astype("uint8")).save(folder / name / f"{i}.png")
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    backbone.save(tmp_path / "tiny.keras")

    _cli(
        "train",
        "--name",
        "r",
        "--quiet",
        "--set",
        f"data.source={folder}",
        "--set",
        f"data.image_size={SIZE}",
        "--set",
        "model.backbone=tiny.keras",
        "--set",
        "training.epochs=30",
        "--set",
        "training.learning_rate=0.05",
        cwd=tmp_path,
    )
    model = "runs/r/model.keras"
    out = _cli(
        "evaluate",
        "--set",
        f"model_path={model}",
        "--set",
        f"data.source={folder}",
        cwd=tmp_path,
    )
    assert "accuracy" in out
    out = _cli(
        "export",
        "--set",
        f"model_path={model}",
        "--set",
        "quantization=[float32, int8]",
        cwd=tmp_path,
    )
    _cli(
        "export",
        "--set",
        f"model_path={model}",
        "--set",
        "format=saved_model",
        cwd=tmp_path,
    )
    export = tmp_path / "runs" / "r" / "export"
    summary = json.loads((export / "summary.json").read_text())
    assert [(r["format"], r["quantization"]) for r in summary] == [
        ("saved_model", "float32"),
        ("tflite", "float32"),
        ("tflite", "int8"),
    ]
    assert all("config.yaml" in r["data"] for r in summary)
    assert not list(tmp_path.rglob("representative.npz"))

    tops = {}
    for kind, path in {
        "keras": model,
        "int8": "runs/r/export/tflite-int8/model.tflite",
        "saved_model": "runs/r/export/saved_model",
    }.items():
        target = tmp_path / f"{kind}.json"
        _cli(
            "predict",
            "--set",
            f"model_path={path}",
            "--set",
            f"inputs={folder}",
            "--set",
            f"output={target}",
            cwd=tmp_path,
        )
        results = json.loads(target.read_text())
        assert len(results) == 30
        tops[kind] = [r["predictions"][0]["class"] for r in results]
        tops[f"{kind}_truth"] = [Path(r["input"]).parent.name for r in results]
    assert tops["keras"] == tops["saved_model"]
    assert np.mean([a == b for a, b in zip(tops["int8"], tops["keras"])]) >= 0.9
    truth = tops["keras_truth"]
    assert np.mean([a == b for a, b in zip(tops["keras"], truth)]) > 0.6
