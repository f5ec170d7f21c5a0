"""Run directories: create, refuse, resume, overwrite, finish."""

from __future__ import annotations

import json

import pytest
import yaml

from keras_transfer.runs import RunDir, RunExistsError


def test_create_writes_layout_and_config(tmp_path):
    run = RunDir.create(tmp_path, "a", config={"lr": 0.1}, command="x")
    for sub in ("logs", "checkpoints", "report"):
        assert (run.path / sub).is_dir()
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {"lr": 0.1}
    assert run.status() == "running"
    run.finish({"accuracy": 0.5})
    assert json.loads(run.metrics_path.read_text()) == {"accuracy": 0.5}
    assert run.status() == "completed"


def test_same_name_refuses_then_resumes_or_overwrites(tmp_path):
    run = RunDir.create(tmp_path, "a")
    (run.path / "marker").write_text("keep")
    with pytest.raises(RunExistsError, match="--resume"):
        RunDir.create(tmp_path, "a")
    run.fail("boom")
    again = RunDir.create(tmp_path, "a", resume=True)
    assert again.resumed and (again.path / "marker").exists()
    again.finish()
    with pytest.raises(RunExistsError, match="already completed"):
        RunDir.create(tmp_path, "a", resume=True)
    fresh = RunDir.create(tmp_path, "a", overwrite=True)
    assert not (fresh.path / "marker").exists()


def test_a_resume_with_another_config_is_refused_naming_the_fields(tmp_path):
    config = {"tuning": {"learning_rates": [0.001, 0.003]}, "model": {"head": "linear"}}
    run = RunDir.create(tmp_path, "k2", config=config)
    run.fail("killed")
    changed = {"tuning": {"learning_rates": [0.1, 0.2]}, "model": {"head": "mlp"}}
    with pytest.raises(
        RunExistsError,
        match=r"2 field\(s\): model.head: 'linear' -> "
        r"'mlp'; tuning.learning_rates: \[0.001, 0.003\] -> \[0.1, 0.2\]",
    ):
        RunDir.create(tmp_path, "k2", config=changed, resume=True)
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved == config  # not rewritten
    again = RunDir.create(tmp_path, "k2", config=config, resume=True)
    assert again.resumed


def test_bad_names_and_flags(tmp_path):
    with pytest.raises(ValueError, match="run name"):
        RunDir.create(tmp_path, "../escape")
    with pytest.raises(ValueError, match="at most one"):
        RunDir.create(tmp_path, "a", resume=True, overwrite=True)
    assert not (tmp_path / "a").exists()


def test_keyboard_interrupt_marks_interrupted_not_failed(tmp_path):
    run = RunDir.create(tmp_path, "a")
    run.fail(ValueError())
    assert run.info()["error"] == "ValueError"  # never an empty error
    run.fail(KeyboardInterrupt())
    info = run.info()
    assert info["status"] == "interrupted" and "error" not in info
    again = RunDir.create(tmp_path, "a", resume=True)
    assert again.resumed and again.status() == "running"


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"not a run")
    with pytest.raises(FileExistsError, match="is not a run.*run.json"):
        RunDir.create(tmp_path, "photos", overwrite=True)
    assert (mine / "cat.jpg").read_bytes() == b"not a run"
    (tmp_path / "empty").mkdir()
    RunDir.create(tmp_path, "empty", overwrite=True)  # an empty folder may go
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        RunDir.create(tmp_path, "file", overwrite=True)
