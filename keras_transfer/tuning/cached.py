"""Depth-0 tuner trials trained on cached backbone features (and trial data checks).

A trial whose ``unfreeze_depth`` is 0 only trains the head: its backbone's features
are computed once (`keras_transfer.features`) and every such trial whose feature
extractor has the same weights fits its head on them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras_tuner

from keras_transfer._backend import keras, tf
from keras_transfer.labels import check_input_shape, check_sparse_labels

__all__ = ["check_trial_data", "fit_cached"]


def check_trial_data(model: keras.Model, args: tuple, kwargs: dict) -> None:
    """Labels or inputs no trial can read stop the search at the first trial.

    The checks of `fine_tune` (`keras_transfer.labels`), raised as KerasTuner's
    `FatalValueError`: a plain error would fail every trial in turn.
    """
    x = args[0] if args else kwargs.get("x")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    try:
        check_input_shape(model, x)
        if y is not None:
            check_sparse_labels(model, y)
    except ValueError as err:  # the same for every trial
        raise keras_tuner.errors.FatalValueError(str(err)) from err


def fit_cached(
    hypermodel: Any, hp: Any, model: keras.Model, args: tuple, kwargs: dict
) -> Any:
    """Fits a depth-0 trial's head on cached features; None: fit as usual.

    Args:
        hypermodel: `TransferHyperModel`. Holds the policy (``cache_features``,
            ``cache_dir``) and the one cache reused across trials.
        hp: keras_tuner.HyperParameters. The trial's values.
        model: keras.Model. The trial's compiled model.
        args: tuple. Positional ``fit`` arguments.
        kwargs: dict. Keyword ``fit`` arguments.

    Returns:
        The History of the head fit, or None when the trial must fit as usual.

    Raises:
        ValueError: ``cache_features=True`` but the trial cannot use the cache.
    """
    if (
        hypermodel.method != "classifier"
        or hypermodel.cache_features is False
        or hp.values.get("unfreeze_depth") != 0
    ):
        return None
    from keras_transfer import features

    names = ("x", "y", "batch_size", "epochs", "verbose", "callbacks")
    fit = {**dict(zip(names, args)), **kwargs}
    extra = sorted(set(fit) - set(_CACHEABLE_FIT_ARGS))
    x, y, weights = fit.get("x"), fit.get("y"), fit.get("sample_weight")
    train = x if y is None else ((x, y) if weights is None else (x, y, weights))
    validation = fit.get("validation_data")
    try:
        extractor, head = features.split_model(model)
        reasons = features.caching_blockers(model, extractor)
    except ValueError as err:
        reasons = [str(err)]
    reasons += [f"fit argument {name!r}" for name in extra]
    reasons += features.data_blockers(train)
    if validation is not None:
        reasons += features.data_blockers(validation)
    if reasons:
        text = "; ".join(reasons)
        if hypermodel.cache_features is True:
            raise ValueError(
                "cache_features=True, but this depth-0 trial cannot train on "
                f"cached features exactly: {text}. Pass cache_features='auto' "
                "or False to TransferHyperModel."
            )
        features.logger.info("[tuner] head phase runs uncached: %s", text)
        return None
    batch_size = fit.get("batch_size") or 32
    key = (id(x), id(y), id(weights), id(validation), batch_size)
    key += (_weights_digest(extractor),)
    if hypermodel._features is None or hypermodel._features[0] != key:
        if hypermodel._features is not None:
            hypermodel._features[1].close()
        hypermodel._features = None
        cached = features.cache_features(
            extractor,
            train,
            validation,
            batch_size=batch_size,
            cache_dir=hypermodel.cache_dir,
            required=hypermodel.cache_features is True,
        )
        if cached is None:
            features.logger.info(
                "[tuner] head phase runs uncached: features over MEMORY_LIMIT "
                "and no cache_dir"
            )
            return None
        hypermodel.feature_passes += 1
        hypermodel._features = (key, cached)
    cached = hypermodel._features[1]
    if "shuffle" in fit and not isinstance(cached.fit_kwargs["x"], tf.data.Dataset):
        cached = dataclasses.replace(
            cached, fit_kwargs={**cached.fit_kwargs, "shuffle": fit["shuffle"]}
        )
    verbose = fit.get("verbose", "auto")
    features.log_cached("tuner", cached, verbose)
    features.compile_head(model, head)
    return features.fit_head(
        model,
        head,
        cached,
        epochs=fit.get("epochs", 1),
        initial_epoch=fit.get("initial_epoch", 0),
        callbacks=fit.get("callbacks"),
        verbose=verbose,
    )


_CACHEABLE_FIT_ARGS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "epochs",
    "initial_epoch",
    "verbose",
    "callbacks",
    "validation_data",
    "shuffle",
)


def _weights_digest(model: keras.Model) -> str:
    """A digest of `model`'s layer classes, weights and output shape."""
    import hashlib

    import numpy as np

    digest = hashlib.sha1(str(model.output.shape).encode())
    for layer in model._flatten_layers():
        digest.update(type(layer).__name__.encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()
