"""`keras-transfer adapt` on a 2-worker cluster on 127.0.0.1 (TF_CONFIG).

Both workers run the same command with the same runs_dir and no strategy option
(the CLI picks "auto", i.e. MultiWorkerMirroredStrategy from TF_CONFIG): only the
chief (worker 0) writes runs/<name>/, the other worker leaves nothing behind, the
two train in lockstep (the same phase lines), and the shared backup
(checkpoints/adapt) is gone once the run completed.
"""

from __future__ import annotations

import json

import pytest
import yaml
from _cluster import SIZE, free_ports, run_cli, tiny_backbone

TIMEOUT = 300


def _tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def _source_folder(root) -> str:
    """The built-in digits as a class folder (classes named as the built-in target's)."""
    from PIL import Image

    from keras_transfer.cli._data import load_labelled
    from keras_transfer.config import DataConfig

    source = load_labelled(DataConfig(source="digits", image_size=SIZE, limit=150))
    for i, (image, label) in enumerate(zip(source.x_train, source.y_train)):
        (root / f"{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"{label}" / f"{i}.png")
    return str(root)


@pytest.mark.large
def test_cli_adapt_two_workers_only_the_chief_writes(tmp_path):
    """The source is an image folder kept on disk (`source.stream: true`): every
    worker decodes it batch by batch, and the distributed predictions still agree
    across workers (the lockstep below); the target (the built-in digits, read
    into memory: `target.stream: false`) takes the in-memory path in the same run."""
    source = {
        "source": _source_folder(tmp_path / "s"),
        "stream": True,
        "image_size": SIZE,
        "limit": 120,
        "batch_size": 32,
    }
    target = {"image_size": SIZE, "limit": 48, "batch_size": 32, "stream": False}
    cfg = {
        "name": "da",
        "runs_dir": str(tmp_path / "runs"),
        "source": source,
        "target": target,
        "model": {"backbone": tiny_backbone(tmp_path / "tiny.keras")},
        "adaptation": {"method": "dann", "epochs": 2, "warmup": 1},
    }
    (tmp_path / "adapt.yaml").write_text(yaml.safe_dump(cfg))
    ports = free_ports(2)
    logs = run_cli(
        tmp_path,
        {
            f"w{i}": (["adapt", "adapt.yaml"], {"TF_CONFIG": _tf_config(ports, i)})
            for i in range(2)
        },
        TIMEOUT,
    )
    run = tmp_path / "runs" / "da"
    for name in ("config.yaml", "model.keras", "metrics.json", "selection.json"):
        assert (run / name).is_file(), name
    assert (run / "report" / "report.html").is_file()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "dann"
    assert len(metrics["history"]["source_val_accuracy"]) == 2
    assert not (run / "checkpoints" / "adapt").exists()  # completed: backup removed
    assert not list(run.rglob("workertemp_*"))
    assert not any((tmp_path / "tmp_w1").iterdir())  # the worker's run folder is gone
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["da"]
    # Lockstep: both workers print the same phase lines (held-out accuracy, scores).
    phases = [
        [ln for ln in log.splitlines() if ln.startswith("[adapt]")]
        for log in logs.values()
    ]
    assert phases[0] and phases[0] == phases[1]
