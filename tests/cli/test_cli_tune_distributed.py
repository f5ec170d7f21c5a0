"""`keras-transfer tune` on many processes of 127.0.0.1, both ways.

- KerasTuner's distributed search (KERASTUNER_*): one chief and two workers run
  the same command with one runs_dir; the workers split the trials, the chief
  writes the run (every trial, best model, report) and the workers nothing but the
  trials' files.
- TF_CONFIG: two workers train each trial together; only the chief writes
  runs/<name>/.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from _cluster import SIZE, free_ports, run_cli, tiny_backbone

TIMEOUT = 300


def _config(tmp_path, max_trials):
    cfg = {
        "name": "search",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 48, "batch_size": 16},
        "model": {"backbone": tiny_backbone(tmp_path / "tiny.keras")},
        "tuning": {
            "max_trials": max_trials,
            "epochs": 1,
            "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2][:max_trials],
            "unfreeze_depths": [0],
        },
    }
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "runs" / "search"


def _trial_ids(log: str) -> list[str]:
    return re.findall(r"^trial (\d+) \[", log, flags=re.M)


@pytest.mark.large
def test_cli_tune_chief_and_two_workers_share_one_search(tmp_path):
    run = _config(tmp_path, max_trials=4)
    (port,) = free_ports(1)
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    logs = run_cli(
        tmp_path,
        {
            name: (
                ["tune", "tune.yaml", "--quiet"],
                {**env, "KERASTUNER_TUNER_ID": name},
            )
            for name in ("chief", "tuner0", "tuner1")
        },
        TIMEOUT,
    )
    ran = {name: _trial_ids(logs[name]) for name in ("tuner0", "tuner1")}
    assert all(ran.values()), ran  # split between the workers
    ids = ran["tuner0"] + ran["tuner1"]
    assert len(ids) == len(set(ids)) == 4  # one oracle numbered them
    assert not _trial_ids(logs["chief"])  # the chief trains nothing
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(r["trial"] for r in metrics["trials"]) == sorted(ids)
    # the chief's best is the best score the workers reported
    reported = {
        m.group(1): float(m.group(2))
        for log in (logs["tuner0"], logs["tuner1"])
        for m in re.finditer(r"^trial (\d+) .* -> val_accuracy ([\d.]+)$", log, re.M)
    }
    assert metrics["best"]["score"] == pytest.approx(max(reported.values()), abs=1e-4)
    assert (run / "model.keras").is_file() and (
        run / "report" / "report.html"
    ).is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["search"]


@pytest.mark.large
def test_cli_tune_two_tf_config_workers_only_the_chief_writes(tmp_path):
    run = _config(tmp_path, max_trials=1)
    ports = free_ports(2)

    def tf_config(index):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        task = {"type": "worker", "index": index}
        return json.dumps({"cluster": cluster, "task": task})

    logs = run_cli(
        tmp_path,
        {
            f"w{i}": (["tune", "tune.yaml", "--quiet"], {"TF_CONFIG": tf_config(i)})
            for i in range(2)
        },
        TIMEOUT,
    )
    assert _trial_ids(logs["w0"]) == _trial_ids(logs["w1"]) == ["0"]
    score = [re.findall(r"-> (val_accuracy [\d.]+)", log) for log in logs.values()]
    assert score[0] and score[0] == score[1]  # trained together: one score
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert (run / "model.keras").is_file()
    assert not any((tmp_path / "tmp_w1").iterdir())  # the worker's folder is gone
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["search"]
