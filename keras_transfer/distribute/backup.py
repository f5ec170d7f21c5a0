"""Resumable training: a cluster-aware `BackupAndRestore` that restores everything.

`ResumableBackup` (returned by `keras_transfer.distribute.backup_callback`, used by
`fine_tune(backup_dir=)`, the CLI's run directories and `adapt`'s running phase) and
`build_optimizer`. It sits in `distribute/` because it is cluster-aware; the
capabilities above (finetune, adaptation) import it, it imports none of them.
"""

from __future__ import annotations

import os
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.distribute import cluster


def build_optimizer(model: keras.Model) -> None:
    """Creates the optimizer's variables (moments) for the current trainable weights.

    Keras drops the optimizer state of a checkpoint ("Skipping variable loading for
    optimizer ...") when it is loaded into an optimizer that is not built yet; call
    this before `load_weights` so that the moments are restored instead.

    Args:
        model: keras.Model. A compiled model (a model without optimizer is left
            as it is).

    Examples:
    ```python
    import keras
    from keras_transfer.distribute.backup import build_optimizer
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    build_optimizer(model)
    assert model.optimizer.built
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not getattr(optimizer, "built", True):
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)


def _random_states(model: keras.Model) -> list:
    """The model's random-number states (Dropout's seed generators, ...).

    `model.variables` holds them, `model.weights` (what checkpoints save) does not.
    """
    saved = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in saved]


def _save_random_states(model: keras.Model, path: str) -> None:
    import numpy as np

    states = {
        f"s{i}": np.asarray(v.numpy()) for i, v in enumerate(_random_states(model))
    }
    tmp = path + ".tmp.npz"
    np.savez(tmp, **states)
    os.replace(tmp, path)


def _load_random_states(model: keras.Model, path: str) -> None:
    import numpy as np

    if not os.path.exists(path):
        return
    states = _random_states(model)
    with np.load(path) as saved:
        if len(saved.files) == len(states):
            for i, variable in enumerate(states):
                variable.assign(saved[f"s{i}"])


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that resumes exactly where training stopped.

    On top of the weights and the epoch number, a resumed run gets back:

    - the optimizer state (Adam's moments, the step count): the optimizer is built
      on the trainable variables, inside the model's strategy scope, before the
      checkpoint is loaded, so Keras does not skip it;
    - the random state of Dropout and other seeded layers, which Keras checkpoints
      leave out (saved to `random_states.npz` next to the weights).

    With a deterministic input pipeline, an interrupted and resumed run ends with
    the same weights as an uninterrupted one. Backups are written at the end of
    every epoch.

    Cluster-aware: under `TF_CONFIG` every worker gets the same `backup_dir` (a
    shared filesystem); only the chief writes it, the other workers write to a
    temporary `backup_dir/workertemp_<i>` removed right after each save, and a
    restarted cluster restores every worker from the chief's backup.

    Args:
        backup_dir: str. Folder of the backup. When training ends its files
            (`cluster.BACKUP_FILES`) are removed, and the folder too if nothing
            else is in it: unlike Keras's `BackupAndRestore`, which removes the
            whole folder, a user's own files there stay.
        **kwargs: Passed to `BackupAndRestore` (`save_freq` defaults to "epoch").

    Examples:
    ```python
    import tempfile
    import numpy as np
    import keras
    from keras_transfer.distribute.backup import ResumableBackup
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    with tempfile.TemporaryDirectory() as tmp:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[ResumableBackup(tmp)])
    ```
    """

    def __init__(self, backup_dir: str, **kwargs: Any) -> None:
        kwargs.setdefault("save_freq", "epoch")
        super().__init__(backup_dir, **kwargs)
        self._shared_dir = backup_dir
        self._states_path = os.path.join(backup_dir, "random_states.npz")

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._write_to(self._shared_dir)  # every worker restores the chief's backup
        if os.path.exists(self._weights_path):
            build_optimizer(self.model)
        super().on_train_begin(logs)
        if os.path.exists(self._weights_path):
            _load_random_states(self.model, self._states_path)
        # In a cluster only the chief writes the shared folder; the others write
        # (and at once remove) their own temporary one.
        self._write_to(cluster.write_dir(self._shared_dir))
        cluster.remove_write_dir(self._shared_dir, self.backup_dir)

    def _write_to(self, folder: str) -> None:
        self.backup_dir = folder
        self._weights_path = os.path.join(folder, "latest.weights.h5")
        self._training_metadata_path = os.path.join(folder, "training_metadata.json")
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_training_metadata_path = self._training_metadata_path + ".bkp"
        self._states_path = os.path.join(folder, "random_states.npz")

    def _save_model(self) -> None:
        # exist_ok: in a cluster the chief and a worker create this tree at once.
        os.makedirs(self.backup_dir, exist_ok=True)
        super()._save_model()
        _save_random_states(self.model, self._states_path)
        cluster.remove_write_dir(self._shared_dir, self.backup_dir)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint:
            cluster.remove_backup(self._shared_dir, self.backup_dir)


__all__ = ["ResumableBackup", "build_optimizer"]
