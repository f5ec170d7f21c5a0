"""BatchNormalization that has never been trained: momentum its statistics can follow.

A BatchNormalization layer trains with the statistics of each batch and predicts with
its moving statistics, an exponential average whose weight on the past is
`momentum`. Keras' default is 0.99, and `keras.applications` uses 0.999 in
MobileNetV2 and MobileNetV3: fine for a pretrained network, whose moving statistics
are already right, but a network built *without* pretrained weights starts them at
mean 0 / variance 1, and after 200 steps (10 epochs of 640 images at batch 32) 82% of
a 0.999 average is still that start. The model then trains to 100% and predicts at
chance: MobileNetV3Small with `weights=None`, trainable BatchNorm, 10 epochs on 628
digits: training accuracy 1.0, validation accuracy 0.100 at every epoch; with
momentum 0.9 the same weights (the momentum does not touch training) reach 0.948.

`set_batchnorm_momentum(model, "auto")`, which the builders and `make_encoder` call,
gives every BatchNormalization layer whose moving statistics are still exactly their
initial values (never trained: a pretrained layer never has them) momentum
`FRESH_BATCHNORM_MOMENTUM` (0.9, PyTorch's default) when its own is higher. Layers
that hold trained statistics keep theirs. After training,
`recompute_batchnorm_statistics` sets trained layers' statistics to their average
over the training data (precise BatchNorm; `fine_tune(recompute_batchnorm="auto")`,
or the `PreciseBatchNorm` callback for a plain ``model.fit``).

(Over 400 lines on purpose: the one home of BatchNorm in backbones -- which layers
are untrained, their momentum, their statistics after training -- that the builders,
the trainable policy, `fine_tune` and AdaBN share; each function is short and
documented with an example.)
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from keras_transfer._backend import keras

logger = logging.getLogger("keras_transfer")

#: Momentum given to BatchNormalization layers that have never been trained.
FRESH_BATCHNORM_MOMENTUM = 0.9

__all__ = [
    "FRESH_BATCHNORM_MOMENTUM",
    "PreciseBatchNorm",
    "batchnorm_layers",
    "check_batchnorm_momentum",
    "fresh_batchnorm_layers",
    "is_fresh_batchnorm",
    "check_recompute_batchnorm",
    "recompute_after_training",
    "recompute_batchnorm_statistics",
    "set_batchnorm_momentum",
    "under_distribution_strategy",
]


def batchnorm_layers(model: Any) -> list:
    """Every `keras.layers.BatchNormalization` inside ``model`` (nested ones too).

    Args:
        model: keras Model or Layer.

    Returns:
        list of layers, ``model`` itself included if it is one.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.normalization import batchnorm_layers
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    assert len(batchnorm_layers(model)) == 1
    ```
    """
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def is_fresh_batchnorm(layer: Any) -> bool:
    """Whether a BatchNormalization layer's moving statistics were never trained.

    True when its moving mean is exactly 0 and its moving variance exactly 1 on
    every channel (their initial values), or when it is not built yet; False for a
    layer without moving statistics.

    Args:
        layer: a keras Layer.

    Returns:
        bool.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.normalization import is_fresh_batchnorm
    assert is_fresh_batchnorm(keras.layers.BatchNormalization())
    assert not is_fresh_batchnorm(keras.layers.Dense(2))
    ```
    """
    if not isinstance(layer, keras.layers.BatchNormalization):
        return False
    if not layer.built:
        return True  # its statistics will be created at their initial values
    mean = getattr(layer, "moving_mean", None)
    variance = getattr(layer, "moving_variance", None)
    if mean is None or variance is None:
        return False
    mean = keras.ops.convert_to_numpy(mean)
    variance = keras.ops.convert_to_numpy(variance)
    return bool(np.all(mean == 0.0) and np.all(variance == 1.0))


def fresh_batchnorm_layers(model: Any) -> list:
    """The BatchNormalization layers of ``model`` whose statistics were never trained.

    A layer counts as fresh when its moving mean is exactly 0 and its moving
    variance exactly 1 on every channel (the initial values), or when it is not
    built yet. Statistics estimated from data (a pretrained backbone, a layer that
    has trained for one step) are never exactly that.

    Args:
        model: keras Model or Layer.

    Returns:
        list of layers.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.normalization import fresh_batchnorm_layers
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    assert len(fresh_batchnorm_layers(model)) == 1
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 3)), verbose=0)
    assert fresh_batchnorm_layers(model) == []
    ```
    """
    return [layer for layer in batchnorm_layers(model) if is_fresh_batchnorm(layer)]


def check_batchnorm_momentum(momentum: Any, name: str = "batchnorm_momentum") -> None:
    """Raises a `ValueError` unless ``momentum`` is ``"auto"``, None or in [0, 1).

    Args:
        momentum: the value to check.
        name: str. The argument's name in the message.

    Examples:
    ```python
    from keras_transfer.normalization import check_batchnorm_momentum
    check_batchnorm_momentum(0.9)
    check_batchnorm_momentum("auto")
    ```
    """
    if momentum is None or momentum == "auto":
        return
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, (int, float))
        or not 0.0 <= float(momentum) < 1.0
    ):
        raise ValueError(
            f"Expected {name} to be 'auto', None (keep every layer's own) or a "
            f"float in [0, 1). Received: {name}={momentum!r}"
        )


def set_batchnorm_momentum(
    model: Any,
    momentum: float | str | None = "auto",
    *,
    label: str = "model",
    verbose: bool = False,
) -> list:
    """Sets the momentum of ``model``'s BatchNormalization layers.

    With ``"auto"`` (what the builders and `make_encoder` do), only layers that
    have never been trained (`fresh_batchnorm_layers`) and whose momentum is above
    `FRESH_BATCHNORM_MOMENTUM` change, to that value, and a log line says so
    (logger ``keras_transfer``; printed too with ``verbose=True``):
    their moving statistics then follow the weights within an epoch instead of
    lagging them by hundreds of steps (see the module docstring for the measured
    case). Training itself uses batch statistics, so the weights a `fit` learns
    are the same; only what the model predicts in inference mode (`evaluate`,
    `predict`, an export) changes. The momentum is part of each layer's config, so
    a saved model keeps it.

    Args:
        model: keras Model or Layer.
        momentum: ``"auto"``, a float in [0, 1) (every BatchNormalization layer
            gets it) or None (nothing changes). Defaults to ``"auto"``.
        label: str. What the log line calls ``model``.
        verbose: bool. Also print the log line. Defaults to False.

    Returns:
        list of ``(layer, its previous momentum)`` for every layer changed.

    Raises:
        ValueError: ``momentum`` is not one of the accepted values.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.normalization import set_batchnorm_momentum
    layer = keras.layers.BatchNormalization(momentum=0.999)
    model = keras.Sequential([keras.Input((3,)), layer])
    assert set_batchnorm_momentum(model) == [(layer, 0.999)]
    assert layer.momentum == 0.9
    assert set_batchnorm_momentum(model, None) == []
    ```
    """
    check_batchnorm_momentum(momentum)
    if momentum is None:
        return []
    if momentum == "auto":
        target = FRESH_BATCHNORM_MOMENTUM
        layers = [
            layer for layer in fresh_batchnorm_layers(model) if layer.momentum > target
        ]
    else:
        target = float(momentum)
        layers = [
            layer for layer in batchnorm_layers(model) if layer.momentum != target
        ]
    changed = [(layer, layer.momentum) for layer in layers]
    for layer in layers:
        layer.momentum = target
    if changed and momentum == "auto":
        was = "/".join(sorted({f"{m:g}" for _, m in changed}))
        message = (
            f"[build] {label}: {len(changed)} BatchNormalization layer(s) have never "
            f"been trained (moving mean 0, variance 1): they use momentum {target:g} "
            f"instead of {was}, so their moving statistics follow the weights "
            "within an epoch (batchnorm_momentum=None keeps theirs)"
        )
        logger.info(message)
        if verbose:
            print(message)
    return changed


def _input_batches(data: Any, batch_size: int, max_batches: int | None) -> Any:
    """Input batches (no labels) of an array, a tuple ``(x, ...)`` or a dataset."""
    from keras_transfer.data.lazy import LazyArray

    if isinstance(data, tuple):
        data = data[0]
    if isinstance(data, (np.ndarray, LazyArray)) or not hasattr(data, "__iter__"):
        # lazy arrays (image files, spilled rows) stay lazy: each slice read alone
        x = data if isinstance(data, LazyArray) else np.asarray(data)
        starts = range(0, len(x), batch_size)
        batches = (np.asarray(x[start : start + batch_size]) for start in starts)
    else:
        batches = (
            batch[0] if isinstance(batch, (tuple, list)) else batch for batch in data
        )
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            return
        yield batch


def recompute_batchnorm_statistics(
    model: Any,
    data: Any,
    *,
    include_frozen: bool = False,
    batch_size: int = 128,
    max_batches: int | None = 200,
) -> int:
    """Sets BatchNorm moving statistics to their average over ``data``.

    Runs ``model`` in training mode over the batches of ``data`` while each
    BatchNormalization layer's moving statistics become the running mean of its
    batch statistics (momentum ``i / (i + 1)`` at batch ``i``): at the end they are
    the average over all the batches, not an exponential average that trails the
    weights ("precise BatchNorm", Wu & Johnson 2021). Weights, momentum and
    trainable flags are unchanged.

    By default only trainable BatchNorm layers are updated: they normalised with
    batch statistics while training, so the average over the data is what
    inference should use. A frozen layer normalised with its moving statistics
    during training, and the rest of the network learnt on them;
    ``include_frozen=True`` updates it too, which is AdaBN (Li et al. 2016) when
    ``data`` is another domain's (`keras_transfer.adaptation.adapt_batchnorm`).

    Args:
        model: keras Model.
        data: array, ``(x, y)`` tuple, or an iterable of batches (a `tf.data`
            dataset of ``x`` or ``(x, y, ...)``).
        include_frozen: bool. Update frozen BatchNorm layers too. Defaults to False.
        batch_size: int. Batch size for array data. Defaults to 128.
        max_batches: int or None. Use at most this many batches. Defaults to 200.

    Returns:
        int. How many layers were updated (0 when there is none).

    Raises:
        ValueError: ``data`` holds no batch.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.normalization import recompute_batchnorm_statistics
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(256, 3)).astype("float32")
    assert recompute_batchnorm_statistics(model, x) == 1
    assert np.allclose(model.layers[0].moving_mean.numpy(), x.mean(0), atol=0.05)
    ```
    """
    layers = [
        layer for layer in batchnorm_layers(model) if include_frozen or layer.trainable
    ]
    if not layers:
        return 0
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    seen = 0
    try:
        for layer in layers:
            layer.trainable = True
        for i, batch in enumerate(_input_batches(data, batch_size, max_batches)):
            for layer in layers:  # cumulative average: m_i = i / (i + 1)
                layer.momentum = i / (i + 1.0)
            model(batch, training=True)
            seen += 1
    finally:
        for layer, (momentum, trainable) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            layer.trainable = trainable
    if not seen:
        raise ValueError("Expected data holding at least one batch. Received none.")
    return len(layers)


#: Attribute `freezing.set_trainable` sets on a BatchNorm layer that
#: `train_batchnorm="auto"` lets train because its statistics were never trained.
UNTRAINED_FLAG = "_kt_untrained_statistics"

RECOMPUTE_CHOICES = ("auto", True, False)


def under_distribution_strategy(model: Any) -> bool:
    """Whether ``model`` lives under a (non-default) `tf.distribute` strategy, where
    the eager passes of `recompute_batchnorm_statistics` are not run."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is not None and (
        type(strategy).__name__ != "_DefaultDistributionStrategy"
    )


def check_recompute_batchnorm(value: Any) -> None:
    """Raises a `ValueError` unless ``value`` is ``"auto"``, True or False."""
    if isinstance(value, bool) or value == "auto":
        return
    raise ValueError(
        "Expected recompute_batchnorm to be 'auto' (when BatchNorm layers that "
        "had never been trained trained), True or False. Received: "
        f"recompute_batchnorm={value!r}"
    )


def recompute_after_training(
    model: Any,
    data: Any,
    when: bool | str = "auto",
    *,
    label: str = "fine_tune",
    verbose: Any = 1,
) -> int:
    """`recompute_batchnorm_statistics` over the training data, after training.

    With ``when="auto"`` it runs only when some trainable BatchNorm layer started
    training with statistics that had never been trained (`train_batchnorm="auto"`
    chose it: a backbone without pretrained weights), whose moving statistics
    then trail weights that moved fast; True runs whenever a BatchNorm layer is
    trainable; False never. It is skipped, with a line saying why, under a
    distribution strategy and for data that cannot be read twice (a generator).

    Args:
        model: keras Model, trained.
        data: what the model was trained on: array, ``(x, y)`` tuple or
            `tf.data.Dataset`.
        when: ``"auto"``, True or False. Defaults to ``"auto"``.
        label: str. Prefix of the log line.
        verbose: printing when not 0. Defaults to 1.

    Returns:
        int. Layers updated.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.normalization import recompute_after_training
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    x = np.full((8, 3), 4.0, "float32")
    assert recompute_after_training(model, x, when="auto", verbose=0) == 0
    assert recompute_after_training(model, x, when=True, verbose=0) == 1
    ```
    """
    from keras_transfer._backend import tf

    check_recompute_batchnorm(when)
    if when is False:
        return 0
    trained = [layer for layer in batchnorm_layers(model) if layer.trainable]
    if when == "auto":
        trained = (
            trained if any(getattr(x, UNTRAINED_FLAG, False) for x in trained) else []
        )
    if not trained:
        return 0
    why = None
    if under_distribution_strategy(model):
        why = "the model lives under a distribution strategy"
    elif not isinstance(data, (np.ndarray, tuple, tf.data.Dataset)):  # a generator
        why = f"its training data ({type(data).__name__}) cannot be read again"
    if why:
        message = f"[{label}] BatchNorm statistics not recomputed after training: {why}"
        n = 0
    else:
        n = recompute_batchnorm_statistics(model, data)
        message = (
            f"[{label}] recomputed the moving statistics of {n} trained "
            "BatchNormalization layer(s) over the training data (precise BatchNorm; "
            "recompute_batchnorm=False skips it)"
        )
    logger.info(message)
    if verbose != 0:
        print(message)
    return n


class PreciseBatchNorm(keras.callbacks.Callback):
    """At the end of `fit`, recomputes BatchNorm statistics over ``data``.

    The trainable BatchNormalization layers' moving mean and variance become the
    average of their batch statistics over ``data`` (one pass in training mode,
    weights unchanged: "precise BatchNorm", Wu & Johnson 2021), through
    `keras_transfer.normalization.recompute_batchnorm_statistics`. It is what
    `fine_tune(recompute_batchnorm=...)` does after its last phase, for a model
    trained with plain ``model.fit``. Pass the training inputs (or, to normalise
    for another domain, unlabelled inputs of that domain: AdaBN). Skipped, with a
    warning, when the model lives under a distribution strategy.

    Args:
        data: array, ``(x, y)`` tuple or `tf.data.Dataset` of inputs (labels are
            ignored). Read once, at the end of training.
        include_frozen: bool. Also recompute frozen BatchNorm layers (pretrained
            statistics). Defaults to False.
        batch_size: int. Batch size for array data. Defaults to 128.
        max_batches: int or None. Cap on the batches read. Defaults to 200.

    Attributes:
        layers_updated: int. Layers recomputed by the last `fit` (0 before).

    Examples:
    ```python
    import numpy as np
    import keras
    from keras_transfer.normalization import PreciseBatchNorm
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.compile("adam", loss="mse")
    x = np.random.default_rng(0).normal(5.0, 2.0, (64, 2)).astype("float32")
    precise = PreciseBatchNorm(x)
    model.fit(x, np.zeros((64, 2)), epochs=1, verbose=0, callbacks=[precise])
    assert precise.layers_updated == 1
    assert np.allclose(model.layers[0].moving_mean.numpy(), x.mean(0), atol=1e-3)
    ```
    """

    def __init__(
        self,
        data: Any,
        *,
        include_frozen: bool = False,
        batch_size: int = 128,
        max_batches: int | None = 200,
    ) -> None:
        super().__init__()
        if data is None:
            raise ValueError(
                "Expected data for PreciseBatchNorm: an array, an (x, y) tuple or a "
                "tf.data.Dataset of inputs. Received: None"
            )
        if int(batch_size) < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: {batch_size}")
        self.data = data
        self.include_frozen = bool(include_frozen)
        self.batch_size = int(batch_size)
        self.max_batches = max_batches
        self.layers_updated = 0

    def on_train_end(self, logs: dict | None = None) -> None:
        if under_distribution_strategy(self.model):
            message = (
                "PreciseBatchNorm: BatchNorm statistics not recomputed: the model "
                "lives under a distribution strategy"
            )
            # a configured log gets it too; without one, Python would print it twice
            if logger.hasHandlers():
                logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
            self.layers_updated = 0
            return
        self.layers_updated = recompute_batchnorm_statistics(
            self.model,
            self.data,
            include_frozen=self.include_frozen,
            batch_size=self.batch_size,
            max_batches=self.max_batches,
        )
        logger.info(
            "PreciseBatchNorm: recomputed the statistics of %d BatchNormalization "
            "layer(s)",
            self.layers_updated,
        )
