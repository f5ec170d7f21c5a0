"""Run directories: one folder per named run, never overwritten silently.

Layout of ``<runs_dir>/<name>/``::

    config.yaml      the resolved config (file + --set overrides + inferred values)
    run.json         status ("running" | "completed" | "failed" | "interrupted"),
                     times, command
    logs/            TensorBoard logs
    checkpoints/     Keras checkpoints and the BackupAndRestore state used by --resume
    model.keras      the final model
    metrics.json     final metrics and the training history
    report/          PNG figures and report.html (self-contained)

Examples:
```python
import tempfile
from keras_transfer.runs import RunDir
with tempfile.TemporaryDirectory() as tmp:
    run = RunDir.create(tmp, "first", config={"lr": 1e-3})
    run.finish({"accuracy": 0.9})
    assert run.status() == "completed"
```
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RunDir", "RunExistsError", "check_replaceable"]


def check_replaceable(
    path: str | os.PathLike, markers: tuple[str, ...], what: str
) -> None:
    """Refuses to replace a directory that is not one this library wrote.

    ``overwrite`` replaces an earlier run, export or preset. It must never delete a
    folder of the user's that happens to sit at that path (a project directory,
    a folder of images), so an existing non-empty directory is replaced only
    when it holds one of ``markers`` (the file every such output writes: a run's
    ``run.json``, an export's ``manifest.json``, a preset's ``config.json``).

    Args:
        path: the directory ``overwrite`` would replace.
        markers: file names, any of which marks it as replaceable.
        what: what ``path`` should be, for the message ("a run", "an export").

    Raises:
        FileExistsError: ``path`` is a file, or a non-empty directory with none
            of ``markers``.

    Examples:
    ```python
    import tempfile, pathlib
    from keras_transfer.runs import check_replaceable
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "notes.txt").write_text("mine")
        try:
            check_replaceable(tmp, ("manifest.json",), "an export")
        except FileExistsError as e:
            assert "not an export" in str(e)
    ```
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(
            f"{str(path)!r} exists and is a file, not {what}: overwrite replaces "
            f"only {what}. Remove it yourself or choose another path."
        )
    if any((path / m).is_file() for m in markers) or not any(path.iterdir()):
        return
    raise FileExistsError(
        f"{str(path)!r} exists and is not {what} (it has no "
        f"{' or '.join(markers)}): overwrite replaces only {what} this library "
        "wrote, never other folders. Remove it yourself or choose another path."
    )


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunExistsError(FileExistsError):
    """The run directory exists and neither resume nor overwrite was asked for."""


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(
            _flat(
                value,
                f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}",
            )
        )
    return out


def _check_resumed_config(saved: Path, config: dict) -> None:
    """A resumed run continues with the config it started with: refuses another
    one, naming the fields that differ (a resumed search or training would mix
    both, and `config.yaml` would describe neither)."""
    if not saved.exists():
        return
    before = _flat(yaml.safe_load(saved.read_text()) or {})
    now = _flat(yaml.safe_load(yaml.safe_dump(_jsonable(config), sort_keys=False)))
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        shown = "; ".join(
            f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:8]
        )
        raise RunExistsError(
            f"--resume continues run {str(saved.parent)!r} with the config it started "
            f"with, and this config differs from it in {len(changed)} field(s): "
            f"{shown}. Resume with the same config, or start a new run (--name, or "
            "--overwrite to replace this one)."
        )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if (
        hasattr(value, "item")
        and callable(value.item)
        and getattr(value, "ndim", 1) == 0
    ):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


@dataclass
class RunDir:
    """A run directory and the paths inside it.

    Attributes:
        path: Path. The run folder `<runs_dir>/<name>`.
        resumed: bool. True when an existing run was reopened with `resume=True`.
    """

    path: Path
    resumed: bool = False

    @classmethod
    def create(
        cls,
        runs_dir: str | os.PathLike,
        name: str,
        *,
        config: dict | None = None,
        resume: bool = False,
        overwrite: bool = False,
        command: str = "",
    ) -> RunDir:
        """Creates (or, with `resume`, reopens) `<runs_dir>/<name>/`.

        Call it only once the config and data are validated, so that a bad config
        leaves no half-written run directory behind.

        Args:
            runs_dir: str or PathLike. Parent folder of runs.
            name: str. Run name: letters, digits, `.`, `_`, `-`.
            config: dict or None. The resolved config, written to `config.yaml`.
            resume: bool. Reopen an existing, unfinished run. Defaults to False.
            overwrite: bool. Delete an existing run first. Defaults to False.
            command: str. The command line, recorded in `run.json`.

        Returns:
            A `RunDir`.

        Raises:
            ValueError: the name is malformed, or `resume` and `overwrite` are both set.
            RunExistsError: the run exists and neither `resume` nor `overwrite` is set,
                `resume` asks to reopen a completed run, or `resume` comes with a
                config other than the one the run started with (the message names
                the fields).
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                "Expected a run name of letters, digits, '.', '_' or '-'. "
                f"Received: name={name!r}"
            )
        if resume and overwrite:
            raise ValueError("Pass at most one of resume=True and overwrite=True.")
        path = Path(runs_dir) / name
        run = cls(path)
        if path.exists():
            if overwrite:
                check_replaceable(path, ("run.json",), "a run")
                shutil.rmtree(path)
            elif not resume:
                raise RunExistsError(
                    f"Run directory {str(path)!r} already exists. Use --resume to "
                    "continue it, --overwrite to replace it, or choose another --name."
                )
            elif run.status() == "completed":
                raise RunExistsError(
                    f"Run {str(path)!r} already completed; nothing to resume. Use "
                    "--overwrite to train again or choose another --name."
                )
            else:
                run.resumed = True
        for sub in ("logs", "checkpoints", "report"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        if config is not None:
            if run.resumed:
                _check_resumed_config(path / "config.yaml", config)
            run.write_config(config)
        info = run.info()
        info.update(status="running", updated=_now())
        info.setdefault("created", _now())
        info["command"] = command or " ".join(sys.argv)
        info["resumed"] = info.get("resumed", 0) + int(run.resumed)
        run._write_info(info)
        return run

    # ---------------------------------------------------------------- paths
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    # ---------------------------------------------------------------- state
    def info(self) -> dict:
        """Returns the contents of `run.json` (empty for a new run)."""
        p = self.path / "run.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def status(self) -> str | None:
        """Returns "running", "completed", "failed", "interrupted" or None."""
        return self.info().get("status")

    def _write_info(self, info: dict) -> None:
        tmp = self.path / "run.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.path / "run.json")

    def write_config(self, config: dict) -> Path:
        """Writes the resolved config to `config.yaml`."""
        p = self.path / "config.yaml"
        p.write_text(yaml.safe_dump(_jsonable(config), sort_keys=False))
        return p

    def write_json(self, filename: str, data: Any) -> Path:
        """Writes `data` (numpy values allowed) as JSON inside the run folder."""
        p = self.path / filename
        p.write_text(json.dumps(_jsonable(data), indent=2))
        return p

    def finish(self, metrics: dict | None = None) -> None:
        """Writes `metrics.json` (when given) and marks the run completed."""
        if metrics is not None:
            self.write_json("metrics.json", metrics)
        info = self.info()
        info.update(status="completed", updated=_now(), finished=_now())
        self._write_info(info)

    def fail(self, error: BaseException | str) -> None:
        """Marks the run failed, recording the error (the run can be resumed).

        A `KeyboardInterrupt` (Ctrl-C, SIGINT) is no failure: the run is marked
        interrupted instead (see `interrupt`).
        """
        if isinstance(error, KeyboardInterrupt):
            self.interrupt()
            return
        info = self.info()
        info.update(
            status="failed",
            updated=_now(),
            error=str(error) or type(error).__name__,
        )
        self._write_info(info)

    def interrupt(self) -> None:
        """Marks the run interrupted (Ctrl-C): `--resume` continues it."""
        info = self.info()
        info.pop("error", None)
        info.update(status="interrupted", updated=_now(), interrupted=_now())
        self._write_info(info)
