"""Distributed search through `make_tuner`: KerasTuner's chief/worker mode.

One chief and two workers on 127.0.0.1 run the same script
(tests/_tuning_process.py) with one shared directory: the trials are split between
the workers, one oracle (the chief's) numbers them all, and the chief's best
hyperparameters are those of the trial with the lowest validation loss that the
workers measured themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import free_ports, run_processes

from keras_transfer.tuning import distributed_search, make_tuner

SCRIPT = Path(__file__).with_name("_tuning_process.py")
TIMEOUT = 240


@pytest.mark.large
def test_one_chief_two_workers_share_one_search(tmp_path):
    (port,) = free_ports(1)
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    run_processes(
        tmp_path,
        {
            tuner_id: (
                [sys.executable, SCRIPT, tmp_path],
                {**oracle, "KERASTUNER_TUNER_ID": tuner_id},
            )
            for tuner_id in ("chief", "tuner0", "tuner1")
        },
        TIMEOUT,
    )

    chief = json.loads((tmp_path / "chief.json").read_text())
    workers = [json.loads((tmp_path / f"tuner{i}.json").read_text()) for i in (0, 1)]
    ran = [t for w in workers for t in w["trials"]]
    # split: every worker ran trials; one oracle: unique ids, all of the chief's
    assert all(w["trials"] for w in workers)
    ids = [t["trial"] for t in ran]
    assert len(ids) == len(set(ids)) == 4
    assert sorted(ids) == sorted(row["trial"] for row in chief["trials"])
    assert len(list((tmp_path / "search" / "dist").glob("oracle*.json"))) == 1
    # the chief's best = the lowest validation loss the workers measured
    best = min(ran, key=lambda t: t["val_loss"])
    assert chief["best"] == best["hyperparameters"]
    assert chief["trials"][0]["score"] == pytest.approx(best["val_loss"], rel=1e-6)
    rates = sorted(t["hyperparameters"]["learning_rate"] for t in ran)
    assert rates == [1e-3, 3e-3, 1e-2, 3e-2]  # the grid, each point once


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"KERASTUNER_TUNER_ID": "tuner0"}, "KERASTUNER_ORACLE_IP to be set too"),
        ({"KERASTUNER_ORACLE_PORT": "8000"}, "KERASTUNER_ORACLE_IP to be set too"),
        (
            {"KERASTUNER_ORACLE_IP": "10.0.0.1", "KERASTUNER_TUNER_ID": "chief"},
            "KERASTUNER_ORACLE_PORT to be set too",
        ),
        (
            {
                "KERASTUNER_ORACLE_IP": "10.0.0.1",
                "KERASTUNER_ORACLE_PORT": "http",
                "KERASTUNER_TUNER_ID": "tuner0",
            },
            r"KERASTUNER_ORACLE_PORT to be an int in \[1, 65535\]",
        ),
        (
            {
                "KERASTUNER_ORACLE_IP": "10.0.0.1",
                "KERASTUNER_ORACLE_PORT": "8000",
                "KERASTUNER_TUNER_ID": " ",
            },
            "KERASTUNER_TUNER_ID to be non-empty",
        ),
    ],
)
def test_half_set_environment_is_refused_by_make_tuner(
    env, match, monkeypatch, tmp_path
):
    for name in (
        "KERASTUNER_TUNER_ID",
        "KERASTUNER_ORACLE_IP",
        "KERASTUNER_ORACLE_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match) as info:
        make_tuner("random", None, directory=tmp_path)
    assert "Received: " in str(info.value)
    assert not any(tmp_path.iterdir())  # refused before any work
    assert distributed_search({}) is None


def test_worker_without_a_chief_says_where_it_looked():
    from keras_transfer.tuning.distributed import SearchRole, wait_for_oracle

    role = SearchRole("tuner0", "127.0.0.1", free_ports(1)[0])  # nothing listens there
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:\d+ within 0\.5 s"):
        wait_for_oracle(role, timeout=0.5)
