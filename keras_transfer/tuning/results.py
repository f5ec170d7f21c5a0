"""After a search: the trials as a table, and the best configuration retrained."""

from __future__ import annotations

import os
from typing import Any

import keras_tuner as kt
import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.tuning.hypermodel import TransferHyperModel

__all__ = ["format_summary", "retrain_best", "search_summary"]


def search_summary(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """One row per finished trial, best first: trial id, hyperparameters, score."""
    trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
    direction = tuner.oracle.objective.direction
    trials.sort(key=lambda t: t.score, reverse=direction == "max")
    return [
        {"trial": t.trial_id, **t.hyperparameters.values, "score": t.score}
        for t in trials
    ]


def format_summary(rows: list[dict[str, Any]]) -> str:
    """Formats `search_summary` rows as a plain-text table."""
    if not rows:
        return "(no finished trials)"
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _merge(train: Any, validation: Any) -> Any:
    if validation is None:
        return train
    if isinstance(train, tf.data.Dataset):
        return train.concatenate(validation)
    return tuple(np.concatenate([a, b]) for a, b in zip(train, validation))


def retrain_best(
    tuner: kt.Tuner,
    train: Any,
    validation: Any = None,
    *,
    epochs: int = 1,
    export_dir: str | os.PathLike | None = None,
    export_kwargs: dict | None = None,
    **fit_kwargs: Any,
) -> tuple[keras.Model, Any]:
    """Retrains the best configuration on train+validation; optionally exports it.

    Args:
        tuner: a tuner after ``search``.
        train: tf.data.Dataset or tuple ``(x, y)``.
        validation: same kind as ``train`` or None; appended to the training data.
        epochs: int. Training epochs. Defaults to 1.
        export_dir: path or None. When given, the model goes to
            `keras_transfer.export.export_saved_model` (verified). Defaults to None.
        export_kwargs: dict or None. More `export_saved_model` arguments.
        **fit_kwargs: more ``model.fit`` arguments.

    Returns:
        ``(model, report)``: the retrained model and the `ExportReport` (or None).

    Raises:
        ValueError: ``train`` is an array (``x`` without its ``y``), or ``overwrite`` was
            passed where ``export_kwargs`` takes it.
        FileExistsError: ``export_dir`` exists (checked before training; replace it
            with ``export_kwargs={"overwrite": True}``).
    """
    from keras_transfer.distribute import maybe_distribute

    if "overwrite" in fit_kwargs:
        raise ValueError(
            "Expected overwrite in export_kwargs: retrain_best passes its other "
            "keyword arguments to model.fit. Received: overwrite="
            f"{fit_kwargs['overwrite']!r}; pass export_kwargs={{'overwrite': True}}."
        )
    if isinstance(train, np.ndarray):
        raise ValueError(
            "Expected train to be a tuple (x, y) or a tf.data.Dataset of (x, y) "
            f"batches. Received: an array of shape {train.shape} (retrain_best takes "
            "the data as one argument, retrain_best(tuner, (x, y)), not x and y "
            "separately)."
        )
    if export_dir is not None:  # before the training, not after it
        from keras_transfer.export._io import check_target

        check_target(export_dir, bool((export_kwargs or {}).get("overwrite")))
    hp = tuner.get_best_hyperparameters(1)[0]
    hypermodel = tuner.hypermodel
    keras.backend.clear_session()
    with maybe_distribute(tuner.distribution_strategy):
        model = hypermodel.build(hp)
    data = _merge(train, validation)
    callbacks = list(fit_kwargs.pop("callbacks", []) or [])
    if isinstance(hypermodel, TransferHyperModel):
        callbacks = hypermodel.callbacks(hp, search=False) + callbacks
    if isinstance(data, tuple):
        fit_kwargs.setdefault("x", data[0])
        fit_kwargs.setdefault("y", data[1])
    else:
        fit_kwargs.setdefault("x", data)
        if isinstance(data, tf.data.Dataset):
            fit_kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
    model.fit(epochs=epochs, callbacks=callbacks, **fit_kwargs)
    report = None
    if export_dir is not None:
        from keras_transfer.export import export_saved_model

        report = export_saved_model(model, export_dir, **(export_kwargs or {}))
    return model, report
