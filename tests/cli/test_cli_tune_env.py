"""`keras-transfer tune` refuses a bad many-machine environment before any work."""

from __future__ import annotations

import json

import pytest

from keras_transfer.cli import main

ORACLE = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "8000"}
TF_CONFIG = {
    "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
    "task": {"type": "worker", "index": 0},
}


@pytest.mark.parametrize(
    ("env", "code", "expected"),
    [
        (
            {"KERASTUNER_TUNER_ID": "tuner0"},
            1,
            "Expected KERASTUNER_ORACLE_IP to be set too",
        ),
        (
            {
                **ORACLE,
                "KERASTUNER_TUNER_ID": "tuner0",
                "TF_CONFIG": json.dumps(TF_CONFIG),
            },
            2,
            "Expected either TF_CONFIG",
        ),
    ],
)
def test_tune_refuses_a_bad_environment(
    env, code, expected, tmp_path, monkeypatch, capsys
):
    for name in ("TF_CONFIG", "KERASTUNER_TUNER_ID", *ORACLE):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["tune", "--set", f"runs_dir={tmp_path}/runs", "--quiet"]) == code
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing written
