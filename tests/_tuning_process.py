"""One process of a distributed search (tests/test_tuning_distributed.py; not a test).

Usage: ``python _tuning_process.py OUT``, with KerasTuner's environment set. Every
process runs the same code: the chief (``KERASTUNER_TUNER_ID=chief``) serves the
oracle and writes ``OUT/chief.json`` (its trials and best hyperparameters); each
worker waits until every worker is up (``OUT/ready_<id>``, so that each one asks
for its first trial before another finishes), runs the trials it is handed and
writes ``OUT/<id>.json``: per trial, the hyperparameters and the best
``val_loss`` it measured itself (a Keras callback), not the oracle's score.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

WORKERS = int(os.environ.get("TUNING_WORKERS", "2"))


def main(out: Path) -> None:
    import numpy as np

    from keras_transfer._backend import keras
    from keras_transfer.tuning import (
        TransferHyperModel,
        make_tuner,
        search_summary,
    )

    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    if tuner_id == "chief":
        # Once one worker is told to stop, KerasTuner's chief re-checks every 20 s
        # whether the others have left (`oracle_chief.start_server`): ~20 s idle per
        # run when the workers end a trial apart. Poll every second here; nothing
        # this test asserts depends on the interval.
        from keras_tuner.src.distribute import oracle_chief

        oracle_chief.time = types.SimpleNamespace(
            sleep=lambda seconds: time.sleep(min(seconds, 1.0))
        )
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 3), dtype=np.float32)
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")

    def backbone():
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        return keras.Model(inputs, h, name="tiny")

    hypermodel = TransferHyperModel(
        backbone,
        2,
        learning_rate=[1e-3, 3e-3, 1e-2, 3e-2],
        unfreeze_depth=0,
        dropout=0.0,
        head_units=None,
        cache_features=False,
    )
    measured: list[float] = []
    ran: list[dict] = []

    class Measure(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            measured.append(float(logs["val_loss"]))

    def record(trial):
        ran.append(
            {
                "trial": trial.trial_id,
                "hyperparameters": trial.hyperparameters.values,
                "val_loss": min(measured),
            }
        )
        measured.clear()

    tuner = make_tuner(
        "grid",
        hypermodel,
        "val_loss",
        max_trials=4,
        directory=out / "search",
        project_name="dist",
        seed=0,
        on_trial_end=record,
    )
    if tuner_id != "chief":
        (out / f"ready_{tuner_id}").touch()
        deadline = time.time() + 120
        while len(list(out.glob("ready_*"))) < WORKERS and time.time() < deadline:
            time.sleep(0.2)
    tuner.search(
        x[:32],
        y[:32],
        validation_data=(x[32:], y[32:]),
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[Measure()],
    )
    if tuner_id == "chief":
        best = tuner.get_best_hyperparameters(1)[0].values
        result = {"trials": search_summary(tuner), "best": best}
    else:
        result = {"trials": ran}
    (out / f"{tuner_id}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
