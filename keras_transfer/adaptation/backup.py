"""Resumable `adapt` runs: the finished phases and the running one, on disk.

Layout of ``backup_dir``::

    state.json                 finished phases: history, controller state
    initial.npz                the weights the run started from (only when the
                               selector needs them: reverse validation)
    <phase>.weights.h5         weights when the phase finished
    <phase>/                   `ResumableBackup` of the running phase (weights,
                               optimizer and random state)
    <phase>.running.json       controller state and logs after each finished epoch

A phase is ``"warmup"`` or a candidate method name. Files are written to a temporary
name and moved into place, so an interruption never leaves a half-written file that
a resume would read.

Cluster-aware (``TF_CONFIG``, see `keras_transfer.distribute.cluster`): every worker
is given the same ``backup_dir`` (a shared filesystem). Every worker reads the
chief's files there, so a restarted cluster resumes in lockstep; only the chief
writes them. The other workers write to a temporary ``backup_dir/workertemp_<i>``
that they remove right after each save (the ``write_filepath`` pattern of
TensorFlow's multi-worker guide).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.distribute import cluster
from keras_transfer.distribute.backup import ResumableBackup, build_optimizer
from keras_transfer.saving import write_json_atomically


class _PhaseRecorder(keras.callbacks.Callback):
    """Keeps the controller's state and every epoch's logs of the running phase.

    Keras's History of a resumed ``fit`` starts at the resumed epoch; the recorder
    holds the epochs before it, so the phase's history stays whole. It reads
    ``path`` (the chief's file) and writes ``write_path`` (see `AdaptBackup`).
    """

    def __init__(self, path: Path, controller: Any, write_path: Path) -> None:
        super().__init__()
        self.path, self.controller, self.write_path = path, controller, write_path
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
        write_json_atomically(
            self.write_path,
            {"controller": self.controller.state(), "history": self.history},
        )
        cluster.remove_write_dir(self.path.parent, self.write_path.parent)


class AdaptBackup:
    """The backup of one `adapt` run (a no-op when ``directory`` is None).

    Args:
        directory: str or None. The backup folder, the same for every worker of a
            cluster: all read it, only the chief writes it (see the module doc).
    """

    def __init__(self, directory: str | None) -> None:
        self.dir = None if directory is None else Path(directory)
        self.state: dict = {}
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            # The chief writes the shared folder, other workers a temporary one.
            self.write_dir = Path(cluster.write_dir(self.dir))
            path = self.dir / "state.json"
            if path.exists():
                self.state = json.loads(path.read_text())

    def starting_weights(self, take: Callable[[], list]) -> list:
        """The weights the run started from, the same on a resumed run.

        ``take()`` snapshots them now (a list per layer of arrays). Without a
        backup folder that is the answer; with one, the first run saves it and a
        resumed run reads it back, whatever the backbone object holds by then (a
        caller may resume with one the interrupted call trained in place).
        """
        if self.dir is None:
            return take()
        path = self.dir / "initial.npz"
        if path.exists():
            with np.load(path) as saved:
                counts = saved["counts"].tolist()
                flat = [saved[f"w{i}"] for i in range(sum(counts))]
            out, start = [], 0
            for count in counts:
                out.append(flat[start : start + count])
                start += count
            return out
        weights = take()
        self.write_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"w{i}": w for i, w in enumerate(w for ws in weights for w in ws)}
        tmp = self.write_dir / "initial.tmp.npz"
        np.savez(tmp, counts=np.array([len(ws) for ws in weights]), **arrays)
        os.replace(tmp, self.write_dir / "initial.npz")
        cluster.remove_write_dir(self.dir, self.write_dir)
        return weights

    def done(self, phase: str) -> bool:
        return self.dir is not None and phase in self.state

    def callbacks(self, phase: str, controller: Any) -> list:
        """BackupAndRestore for the running phase, plus the controller's state."""
        if self.dir is None:
            return []
        name = f"{phase}.running.json"
        self._recorder = _PhaseRecorder(
            self.dir / name, controller, self.write_dir / name
        )
        return [self._recorder, ResumableBackup(str(self.dir / phase))]

    def save_phase(self, phase: str, model: Any, controller: Any, history) -> None:
        if self.dir is None:
            return
        history.history = {k: list(v) for k, v in self._recorder.history.items()}
        history.epoch = list(range(len(next(iter(history.history.values()), []))))
        self.write_dir.mkdir(parents=True, exist_ok=True)
        weights = self.write_dir / f"{phase}.weights.h5"
        tmp = self.write_dir / f"{phase}.tmp.weights.h5"
        model.save_weights(str(tmp))
        os.replace(tmp, weights)
        self.state[phase] = {
            "history": history.history,
            "epochs": len(history.epoch),
            "controller": controller.state(),
        }
        write_json_atomically(self.write_dir / "state.json", self.state)
        cluster.remove_write_dir(self.dir, self.write_dir)

    def load_phase(self, phase: str, model: Any, controller: Any):
        """Loads a finished phase's weights into ``model``; returns its History."""
        saved = self.state[phase]
        build_optimizer(model)  # its state is in the file too: load it, not skip it
        model.load_weights(str(self.dir / f"{phase}.weights.h5"))
        controller.load_state(saved["controller"])
        history = keras.callbacks.History()
        history.set_model(model)
        history.history = {k: list(v) for k, v in saved["history"].items()}
        history.epoch = list(range(saved["epochs"]))
        return history

    def _written(self) -> list[Path]:
        """What this backup wrote into its folder: never anything else there."""
        names = {"state.json", "state.json.tmp", "initial.npz", "initial.tmp.npz"}
        for phase in self.state:
            names |= {
                phase,
                f"{phase}.weights.h5",
                f"{phase}.tmp.weights.h5",
                f"{phase}.running.json",
                f"{phase}.running.json.tmp",
            }
        return [self.dir / name for name in sorted(names)]

    def clear(self) -> None:
        """Removes the backup (the run completed): only the files it wrote.

        ``backup_dir`` may be a folder that holds other files (the user's): they
        stay, and the folder is removed only when nothing else is left in it. In a
        cluster a worker removes only its temporary folder and the chief only its
        own files; whoever finishes last removes the emptied folder.
        """
        if self.dir is None or not self.dir.exists():
            return
        if self.write_dir != self.dir:  # a worker: its temporary folder
            shutil.rmtree(self.write_dir, ignore_errors=True)
        else:
            for path in self._written():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                elif path.exists():
                    path.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only when nothing else is left in it
