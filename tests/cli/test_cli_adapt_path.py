"""`adapt` -> `export` -> `predict`, each command in its own process.

The model `keras-transfer adapt` writes (default method "auto": five candidates,
EnsV; and with `adaptation.selector=ensemble`, their ensemble as one model) is
exported to TFLite and read back by `predict`, as a user runs them one after
another; `predict` on the `.keras` file and on the export agree.
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
from _cluster import CODE, SIZE, tiny_backbone


def _cli(*args: str, cwd: Path) -> str:
    exe = shutil.which("keras-transfer")
    command = [exe] if exe else [sys.executable, "-c", CODE]
    result = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"},
        timeout=600,
    )
    assert result.returncode == 0, (
        f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


@pytest.mark.large
@pytest.mark.parametrize("selector", ["ensv", "ensemble"])
def test_adapt_then_export_then_predict_in_separate_processes(tmp_path, selector):
    backbone = tiny_backbone(tmp_path / "tiny.keras")
    log = _cli(
        "adapt",
        "--set",
        "name=da",
        "--set",
        f"model.backbone={backbone}",
        "--set",
        f"source.image_size={SIZE}",
        "--set",
        "source.limit=120",
        "--set",
        f"target.image_size={SIZE}",
        "--set",
        "target.limit=48",
        "--set",
        "adaptation.epochs=3",
        "--set",
        "adaptation.warmup=1",
        "--set",
        f"adaptation.selector={selector}",
        cwd=tmp_path,
    )
    run = tmp_path / "runs" / "da"
    selection = json.loads((run / "selection.json").read_text())
    assert selection["selector"] == selector and len(selection["candidates"]) == 5
    picked = selection["chosen"]
    if selector == "ensemble":
        assert picked == "ensemble" and selection["members"]
        assert set(selection["members"]) <= set(selection["candidates"])
        picked = selection["ensv_choice"]  # the agreement check reads EnsV's pick
    # adapt predicts eagerly: five candidates no longer make TensorFlow warn
    assert "triggered tf.function retracing" not in log
    # the label-free agreement check: recorded, and said where the user looks
    agreement = selection["agreement"]
    assert agreement == selection["candidates"][picked]["scores"]["ensv"]
    assert selection["low_agreement"] is (agreement < 0.9)
    page = (run / "report" / "report.html").read_text()
    said = "candidates agree with the chosen model"
    assert (said in log) is (said in page) is selection["low_agreement"]
    _cli(
        "export",
        "--set",
        "model_path=runs/da/model.keras",
        "--set",
        "quantization=[float32]",
        cwd=tmp_path,
    )
    export = run / "export" / "tflite-float32"
    assert (export / "model.tflite").is_file()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, SIZE, SIZE, 3)).astype("uint8")
    np.savez(tmp_path / "x.npz", x=x)
    answers = {}
    for name, model in (("keras", "runs/da/model.keras"), ("tflite", str(export))):
        out = tmp_path / f"{name}.json"
        _cli(
            "predict",
            "--set",
            f"model_path={model}",
            "--set",
            "inputs=x.npz",
            "--set",
            f"output={out.name}",
            cwd=tmp_path,
        )
        answers[name] = json.loads(out.read_text())
    assert len(answers["keras"]) == len(answers["tflite"]) == len(x)
    for a, b in zip(answers["keras"], answers["tflite"], strict=True):
        (pa,), (pb,) = a["predictions"], b["predictions"]
        assert a["input"] == b["input"]
        # the export predicts the Keras model's class with the same probability
        assert pa["class"] == pb["class"]
        assert abs(pa["probability"] - pb["probability"]) < 1e-4
