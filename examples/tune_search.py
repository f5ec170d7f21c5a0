# ruff: noqa: E402
"""# KerasTuner search of learning rate and unfreeze depth

`TransferHyperModel` builds a classifier on a fresh backbone per trial and declares
the learning rate and the number of unfrozen backbone layers as hyperparameters;
`make_tuner` picks the search algorithm. The plot shows each trial's score against
its hyperparameters. Run as a script with `--quick` for a smoke test.
"""

# %%
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"
OUT = os.environ.get("KERAS_TRANSFER_EXAMPLES_OUT", "saved_models/examples")
OUT = os.path.join(OUT, "tune_search")
os.makedirs(OUT, exist_ok=True)
N = 200 if QUICK else None

# %% Data: the target digits (labelled here: tuning needs a validation score)
from keras_transfer.data import from_arrays
from keras_transfer.datasets import digits_domains

_, target = digits_domains(size=32)
train = from_arrays(target.x_train[:N], target.y_train[:N], batch_size=32)
val = from_arrays(target.x_test[:N], target.y_test[:N], batch_size=32, shuffle=False)

# %% A backbone factory: a small CNN (use a spec such as "keras_hub:<preset>" online)
from keras_transfer._backend import keras
from keras_transfer.tuning import (
    TransferHyperModel,
    format_summary,
    make_tuner,
    search_summary,
)


def backbone():
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        ],
        name="cnn",
    )


hypermodel = TransferHyperModel(
    backbone,
    num_classes=10,
    learning_rate=[1e-2, 1e-3, 1e-4],
    unfreeze_depth=[0, 1, 2],
    dropout=0.1,
    head_units=None,
)
tuner = make_tuner(
    "random",
    hypermodel,
    "val_accuracy",
    max_trials=2 if QUICK else 8,
    directory=OUT,
    project_name="search",
    overwrite=True,
    seed=0,
)
tuner.search(train, validation_data=val, epochs=1 if QUICK else 5, verbose=0)

# %% Results
from keras_transfer.reports import plot_trials

rows = search_summary(tuner)
print(format_summary(rows))
trials = [
    {
        "hyperparameters": {k: v for k, v in r.items() if k not in ("trial", "score")},
        "score": r["score"],
    }
    for r in rows
]
print(plot_trials(trials, os.path.join(OUT, "trials.png"), objective="val_accuracy"))
