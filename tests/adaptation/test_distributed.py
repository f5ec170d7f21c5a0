import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _run_fresh(script_name: str) -> dict:
    """Runs a script in a fresh process (logical devices must be configured before
    TensorFlow initialises) and returns the JSON on its ``RESULT`` line."""
    script = Path(__file__).with_name(script_name)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.large
def test_dann_under_mirrored_strategy_matches_single_device():
    out = _run_fresh("_distributed_dann.py")
    single, mirrored = out["single"], out["mirrored"]
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    for key in (
        "loss",
        "source_loss",
        "source_accuracy",
        "domain_loss",
        "domain_accuracy",
    ):
        np.testing.assert_allclose(
            mirrored["history"][key], single["history"][key], rtol=1e-4
        )
    assert single["history"]["loss"][0] > 0.1
    for a, b in zip(single["weights"], mirrored["weights"], strict=True):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-5)


@pytest.mark.large
def test_adapt_trains_under_mirrored_strategy():
    out = _run_fresh("_distributed_adapt.py")
    assert out["mirrored"]["replicas"] == 2 and out["default"]["replicas"] == 1
    # one device: adapt predicts eagerly (no graph); two replicas: through Keras
    assert out["default"]["predict_graphs"] == 0
    assert out["mirrored"]["predict_graphs"] > 0
    for run in out.values():
        assert run["epochs"] == 8 and run["finite"]
        assert run["source_accuracy"] > 0.6  # 3 separable classes: it learnt
