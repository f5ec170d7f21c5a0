"""Reverse validation: does a model's target labelling teach the SOURCE task back?

An adapted model's predictions on the unlabelled target are pseudo-labels. A fresh
model trained on the target inputs with those pseudo-labels, then evaluated on the
labelled source, scores how consistent the labelling is with the source classes: a
model that maps the target's clusters to the wrong classes (seen on the SVHN-like
and rotation + noise pairs, where BNM and MCC end below source-only while their
predictions are confident and agree with each other) teaches a reverse model that
fails on the source, however confident it was. The score needs source labels
only, which `adapt` holds out anyway.

This is the plain form of Zhong et al. 2010; Ganin et al. 2016 (section 5.1.2)
choose DANN's hyperparameters with it, training the reverse model with DANN itself
(target → source); here the reverse model trains on the target alone, which costs
one short supervised fit per candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.data.files import lazy_asarray
from keras_transfer.data.lazy import LazyArray
from keras_transfer.data.pipelines import from_arrays

#: Epochs of each reverse fit over the target inputs.
REVERSE_EPOCHS = 10
#: Batch size of each reverse fit.
REVERSE_BATCH_SIZE = 64
#: At most this many source examples score a reverse model (a random subset).
REVERSE_MAX_SOURCE = 2000


def _check(target_x: Any, target_probabilities: Any, source: Any) -> tuple:
    probabilities = np.asarray(target_probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(
            "Expected target_probabilities of shape (n, classes) with at least two "
            f"classes. Received shape: {probabilities.shape}"
        )
    if len(target_x) != len(probabilities):
        raise ValueError(
            "Expected one row of target_probabilities per target input. Received: "
            f"{len(probabilities)} rows for {len(target_x)} inputs"
        )
    if not isinstance(source, (tuple, list)) or len(source) != 2:
        raise ValueError(
            "Expected source as a tuple (x, y) of labelled source examples. "
            f"Received: {type(source).__name__}"
        )
    xs, ys = source
    ys = np.asarray(ys).reshape(-1).astype(int)
    if len(xs) != len(ys) or not len(ys):
        raise ValueError(
            "Expected as many source labels as source inputs, at least one. "
            f"Received: {len(ys)} labels for {len(xs)} inputs"
        )
    return probabilities, xs, ys


def reverse_validation(
    build_model: Callable[[], Any],
    target_x: Any,
    target_probabilities: Any,
    source: tuple[Any, Any],
    *,
    epochs: int = REVERSE_EPOCHS,
    batch_size: int = REVERSE_BATCH_SIZE,
    optimizer: Any = None,
    seed: int = 0,
    max_source: int | None = REVERSE_MAX_SOURCE,
) -> float:
    """Source accuracy of a fresh model trained on the target's pseudo-labels.

    Args:
        build_model: callable with no arguments returning a fresh keras Model (inputs
            → class probabilities), the same architecture and starting weights for
            every model compared: it is compiled and trained here.
        target_x: array. Unlabelled target inputs.
        target_probabilities: array ``(n, classes)``. The scored model's class
            probabilities on ``target_x``; their argmax are the pseudo-labels.
        source: tuple ``(x, y)``. Labelled source examples the reverse model never
            trains on.
        epochs: int. Epochs of the reverse fit. Defaults to `REVERSE_EPOCHS`.
        batch_size: int. Defaults to `REVERSE_BATCH_SIZE`.
        optimizer: keras Optimizer or None. A fresh optimizer for the fit (it is
            not reused); None uses ``Adam(1e-3)``.
        seed: int. Seeds the fit's shuffling and dropout, and the source subset.
        max_source: int or None. Score on at most this many source examples.

    Returns:
        float in ``[0, 1]``: the reverse model's source accuracy (higher is better).

    Raises:
        ValueError: Probabilities that are not ``(n, classes)`` with one row per
            target input, or a source that is not ``(x, y)``, or ``epochs < 1``.

    Examples:
    ```python
    import numpy as np
    import keras
    from keras_transfer.adaptation.reverse import reverse_validation
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, 4)).astype("float32")
    ys = (xs[:, 0] > 0).astype(int)
    xt = xs + 0.5  # shifted target
    good = np.eye(2)[(xt[:, 0] > 0.5).astype(int)]  # a labelling that follows x0
    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
    fast = {"epochs": 10, "batch_size": 32}
    score = reverse_validation(
        build, xt, good, (xs, ys), optimizer=keras.optimizers.Adam(0.05), **fast
    )
    swapped = reverse_validation(
        build, xt, 1 - good, (xs, ys), optimizer=keras.optimizers.Adam(0.05), **fast
    )
    assert score > 0.8 and swapped < 0.2  # 0.85 and 0.15
    ```

    References:
        Zhong et al. 2010, "Cross Validation Framework to Choose amongst Models and
        Datasets for Transfer Learning", ECML PKDD. Ganin et al. 2016,
        "Domain-Adversarial Training of Neural Networks", JMLR 17 (section 5.1.2).
    """
    (score,) = reverse_validation_scores(
        {"model": target_probabilities},
        build_model,
        target_x,
        source,
        make_optimizer=None if optimizer is None else lambda: optimizer,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        max_source=max_source,
    ).values()
    return score


def _source_subset(xs: Any, ys: Any, max_source: int | None, seed: int) -> tuple:
    if max_source is not None and len(ys) > max_source:
        keep = np.sort(np.random.default_rng(seed).permutation(len(ys))[:max_source])
        xs, ys = lazy_asarray(xs)[keep], ys[keep]
    return xs, ys


def _fit_and_score(
    model: Any,
    target_x: Any,
    probabilities: Any,
    source: tuple,
    epochs: int,
    batch_size: int,
    seed: int,
) -> float:
    """Fits the compiled ``model`` on the pseudo-labels; its source accuracy."""
    xs, ys = source
    keras.utils.set_random_seed(seed)
    labels = probabilities.argmax(-1)
    if isinstance(target_x, LazyArray):  # image files / spilled rows: streamed
        data = from_arrays(target_x, labels, batch_size=batch_size, seed=seed)
        model.fit(data, epochs=epochs, shuffle=False, verbose=0)
    elif np.asarray(target_x).dtype.kind in "biuf":
        model.fit(target_x, labels, epochs=epochs, batch_size=batch_size, verbose=0)
    else:  # raw text: Keras's array adapter takes numbers only
        data = tf.data.Dataset.from_tensor_slices((target_x, labels))
        data = data.shuffle(len(labels), seed=seed).batch(batch_size)
        model.fit(data, epochs=epochs, shuffle=False, verbose=0)
    # eagerly: no predict graph per reverse model (no retracing warning)
    predicted = np.asarray(predict_eagerly(model, xs, 256)).argmax(-1)
    return float(np.mean(predicted == ys))


def reverse_validation_scores(
    probabilities: Mapping[str, Any],
    build_model: Callable[[], Any],
    target_x: Any,
    source: tuple[Any, Any],
    *,
    make_optimizer: Callable[[], Any] | None = None,
    epochs: int = REVERSE_EPOCHS,
    batch_size: int = REVERSE_BATCH_SIZE,
    seed: int = 0,
    max_source: int | None = REVERSE_MAX_SOURCE,
) -> dict[str, float]:
    """`reverse_validation` for several models' target predictions, one graph.

    Every score is the one `reverse_validation` returns for the same arguments,
    but the reverse models are one model: ``build_model`` is called once, the model
    and its optimizer are compiled and built once, and before each fit their weights
    and the optimizer's state (moments, step count) are put back where they were
    when it was built. Keras traces one training step for all the fits instead of
    one per model: about 1.2-1.4 s per candidate for the benchmark's small CNN on
    2 cores (`benchmarks/reverse_validation_time.py`). Random state
    that lives outside the weights (the Keras seed generators of dropout or
    augmentation layers) carries on from one fit to the next, as it does when
    ``build_model`` returns a model over the same layers each time.

    Args:
        probabilities: mapping ``name -> array (n, classes)`` on ``target_x``.
        build_model: as in `reverse_validation`; called once.
        target_x: array. Unlabelled target inputs.
        source: tuple ``(x, y)``. Labelled source examples.
        make_optimizer: callable or None. Called once for the optimizer of the
            reverse fits (reset to its built state before each); None uses
            ``Adam(1e-3)``.
        epochs: int. Epochs of each reverse fit. Defaults to `REVERSE_EPOCHS`.
        batch_size: int. Defaults to `REVERSE_BATCH_SIZE`.
        seed: int. Seeds each fit's shuffling and dropout, and the source subset.
        max_source: int or None. Score on at most this many source examples.

    Returns:
        dict mapping each name to its reverse-validation accuracy.

    Raises:
        ValueError: As `reverse_validation`, for any of the ``probabilities``.

    Examples:
    ```python
    import numpy as np
    import keras
    from keras_transfer.adaptation.reverse import reverse_validation_scores
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, 4)).astype("float32")
    ys = (xs[:, 0] > 0).astype(int)
    xt = xs + 0.5
    good = np.eye(2)[(xt[:, 0] > 0.5).astype(int)]
    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
    scores = reverse_validation_scores(
        {"good": good, "swapped": 1 - good}, build, xt, (xs, ys),
        make_optimizer=lambda: keras.optimizers.Adam(0.05), epochs=10, batch_size=32,
    )
    assert scores["good"] > 0.8 > 0.2 > scores["swapped"]
    ```
    """
    if int(epochs) < 1:
        raise ValueError(f"Expected epochs >= 1. Received: epochs={epochs!r}")
    checked = {name: _check(target_x, p, source) for name, p in probabilities.items()}
    if not checked:
        return {}
    _, xs, ys = next(iter(checked.values()))
    xs, ys = _source_subset(xs, ys, max_source, seed)
    model = build_model()
    optimizer = make_optimizer() if make_optimizer else None
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    strategy = (
        getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    )
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    weights = model.get_weights()
    state = [np.array(v) for v in model.optimizer.variables]
    scores = {}
    for name, (p, _, _) in checked.items():
        model.set_weights(weights)
        for variable, value in zip(model.optimizer.variables, state):
            variable.assign(value)
        scores[name] = _fit_and_score(
            model, target_x, p, (xs, ys), int(epochs), batch_size, seed
        )
    return scores
