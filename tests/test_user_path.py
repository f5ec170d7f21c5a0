"""The offline user's path, each command in its own process through the console script.

`pretrain` a backbone on one image folder -> `train` with that preset on another
folder at 64 px, interrupted with SIGINT in its fine-tune stage and finished with
`--resume` in a new process -> `evaluate` -> `export` (float32 + int8, calibrated on the run's
own data; and a SavedModel) -> `evaluate` of the int8 file -> `predict` on the
`.keras`, the SavedModel and the `.tflite`, never repeating the image size or naming
data for export.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CLI_MAIN, interrupt_cli

CLASSES = ["horizontal", "vertical", "diagonal", "checker"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("keras-transfer")
    command = [exe] if exe else [sys.executable, "-c", CLI_MAIN]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert result.returncode == 0, (
        f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result


def _write_folder(root: Path, size: int, per_class: int, seed: int) -> None:
    """Four texture classes (stripes of three orientations, a checkerboard), random
    colours: a label is carried by the pattern, as in a real image folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    r = np.arange(size)[:, None] * np.ones((1, size))
    period = 4  # the same texture scale at every image size
    masks = [
        r % period < period // 2,
        r.T % period < period // 2,
        (r + r.T) % period < period // 2,
        (r // period + r.T // period) % 2 == 0,
    ]
    for name, mask in zip(CLASSES, masks):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            img = np.where(mask[..., None], fg, bg) + rng.integers(
                -20, 20, (size, size, 3)
            )
            img = np.clip(img, 0, 255).astype("uint8")
            Image.fromarray(img).save(root / name / f"{i}.png")


@pytest.mark.large
def test_pretrain_train_evaluate_export_predict(tmp_path):
    _write_folder(tmp_path / "pretrain_images", size=32, per_class=24, seed=0)
    _write_folder(tmp_path / "photos", size=64, per_class=10, seed=1)

    out = _cli(
        "pretrain", "--name", "base", "--quiet",
        "--set", "data.source=pretrain_images",
        "--set", "data.batch_size=16",
        "--set", "pretrain.epochs=20",
        "--set", "pretrain.learning_rate=0.003",
        "--set", "pretrain.filters=[16, 32]",  # repeats: one per stage by default
        cwd=tmp_path,
    ).stdout  # fmt: skip
    preset = "runs/base/preset"
    assert f"model.backbone=keras_hub:{preset}" in out
    assert (tmp_path / preset / "config.json").is_file()

    train_args = [
        "train", "--name", "t", "--quiet",
        "--set", "data.source=photos",
        "--set", "data.image_size=64",
        "--set", "data.batch_size=8",
        "--set", f"model.backbone=keras_hub:{preset}",
        "--set", "training.epochs=6",
        "--set", "training.learning_rate=0.01",
        "--set", "training.fine_tune_epochs=4",
        "--set", "training.fine_tune_learning_rate=0.001",
    ]  # fmt: skip
    # Ctrl-C in the fine-tune stage (epoch 8 of 10), then --resume in a new process.
    code, log, _ = interrupt_cli(tmp_path, train_args, at=7, cwd=tmp_path)
    assert code == 130 and "Traceback" not in log, log
    run = json.loads((tmp_path / "runs" / "t" / "run.json").read_text())
    assert run["status"] == "interrupted"
    _cli(*train_args, "--resume", cwd=tmp_path)
    model = "runs/t/model.keras"
    run = json.loads((tmp_path / "runs" / "t" / "run.json").read_text())
    assert run["status"] == "completed" and run["resumed"] == 1
    history = json.loads((tmp_path / "runs/t/metrics.json").read_text())["history"]
    assert len(history["loss"]) == 10

    # The image size travels with the model: nothing says 64 from here on.
    out = _cli(
        "evaluate", "--set", f"model_path={model}", "--set", "data.source=photos",
        cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "accuracy" in out

    _cli(
        "export", "--set", f"model_path={model}",
        "--set", "quantization=[float32, int8]",
        cwd=tmp_path,
    )  # fmt: skip
    _cli(
        "export", "--set", f"model_path={model}", "--set", "format=saved_model",
        cwd=tmp_path,
    )  # fmt: skip
    export = tmp_path / "runs" / "t" / "export"
    summary = json.loads((export / "summary.json").read_text())
    kinds = sorted((r["format"], r["quantization"]) for r in summary)
    assert kinds == [
        ("saved_model", "float32"),
        ("tflite", "float32"),
        ("tflite", "int8"),
    ]
    assert not list(tmp_path.rglob("representative.npz"))
    # The shipped file on the same labelled data, through LiteRT.
    _cli(
        "evaluate", "--set", "model_path=runs/t/export/tflite-int8",
        "--set", "data.source=photos",
        cwd=tmp_path,
    )  # fmt: skip
    int8 = json.loads((export / "eval-tflite-int8" / "metrics.json").read_text())
    keras_eval = json.loads((tmp_path / "runs/t/eval/metrics.json").read_text())
    assert abs(int8["accuracy"] - keras_eval["accuracy"]) <= 0.1

    tops = {}
    for kind, path in {
        "keras": model,
        "saved_model": "runs/t/export/saved_model",
        "float32": "runs/t/export/tflite-float32/model.tflite",
        "int8": "runs/t/export/tflite-int8/model.tflite",
    }.items():
        target = tmp_path / f"{kind}.json"
        _cli(
            "predict", "--set", f"model_path={path}", "--set", "inputs=photos",
            "--set", f"output={target}",
            cwd=tmp_path,
        )  # fmt: skip
        results = json.loads(target.read_text())
        assert len(results) == 40
        tops[kind] = [r["predictions"][0]["class"] for r in results]
        tops["truth"] = [Path(r["input"]).parent.name for r in results]
    assert tops["keras"] == tops["saved_model"] == tops["float32"]
    assert np.mean([a == b for a, b in zip(tops["int8"], tops["keras"])]) >= 0.9
    # Chance is 0.25 (a random frozen backbone: ~0.27 in a check): the preset's
    # features let the head learn the patterns (~0.5 on the 40 images in a check).
    assert np.mean([a == b for a, b in zip(tops["keras"], tops["truth"])]) > 0.4
