"""Resumable `adapt` runs: the finished phases and the running one, on disk.

Layout of ``backup_dir``::

    state.json                 finished phases: history, controller state
    <phase>.weights.h5         weights when the phase finished
    <phase>/                   keras.callbacks.BackupAndRestore of the running phase
    <phase>.running.json       controller state and logs after each finished epoch

A phase is ``"warmup"`` or a candidate method name. Files are written to a temporary
name and moved into place, so an interruption never leaves a half-written file that
a resume would read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from keras_transfer._backend import keras


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, default=float))
    os.replace(tmp, path)


class _PhaseRecorder(keras.callbacks.Callback):
    """Keeps the controller's state and every epoch's logs of the running phase.

    Keras's History of a resumed ``fit`` starts at the resumed epoch; the recorder
    holds the epochs before it, so the phase's history stays whole.
    """

    def __init__(self, path: Path, controller: Any) -> None:
        super().__init__()
        self.path, self.controller = path, controller
        self.history: dict[str, list] = {}
        if path.exists():
            saved = json.loads(path.read_text())
            controller.load_state(saved["controller"])
            self.history = saved["history"]

    def on_epoch_begin(self, epoch, logs=None):
        # an epoch recorded but not backed up before an interruption is re-run
        self.history = {k: v[:epoch] for k, v in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        _write_json(
            self.path, {"controller": self.controller.state(), "history": self.history}
        )


class AdaptBackup:
    """The backup of one `adapt` run (a no-op when ``directory`` is None)."""

    def __init__(self, directory: str | None) -> None:
        self.dir = None if directory is None else Path(directory)
        self.state: dict = {}
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / "state.json"
            if path.exists():
                self.state = json.loads(path.read_text())

    def done(self, phase: str) -> bool:
        return self.dir is not None and phase in self.state

    def callbacks(self, phase: str, controller: Any) -> list:
        """BackupAndRestore for the running phase, plus the controller's state."""
        if self.dir is None:
            return []
        self._recorder = _PhaseRecorder(self.dir / f"{phase}.running.json", controller)
        return [self._recorder, keras.callbacks.BackupAndRestore(str(self.dir / phase))]

    def save_phase(self, phase: str, model: Any, controller: Any, history) -> None:
        if self.dir is None:
            return
        history.history = {k: list(v) for k, v in self._recorder.history.items()}
        history.epoch = list(range(len(next(iter(history.history.values()), []))))
        weights = self.dir / f"{phase}.weights.h5"
        tmp = self.dir / f"{phase}.tmp.weights.h5"
        model.save_weights(str(tmp))
        os.replace(tmp, weights)
        self.state[phase] = {
            "history": history.history,
            "epochs": len(history.epoch),
            "controller": controller.state(),
        }
        _write_json(self.dir / "state.json", self.state)

    def load_phase(self, phase: str, model: Any, controller: Any):
        """Loads a finished phase's weights into ``model``; returns its History."""
        saved = self.state[phase]
        model.load_weights(str(self.dir / f"{phase}.weights.h5"))
        controller.load_state(saved["controller"])
        history = keras.callbacks.History()
        history.set_model(model)
        history.history = {k: list(v) for k, v in saved["history"].items()}
        history.epoch = list(range(saved["epochs"]))
        return history

    def clear(self) -> None:
        """Removes the backup (the run completed)."""
        if self.dir is not None and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
