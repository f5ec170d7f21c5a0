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
that hold trained statistics keep theirs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from keras_transfer._backend import keras

logger = logging.getLogger("keras_transfer")

#: Momentum given to BatchNormalization layers that have never been trained.
FRESH_BATCHNORM_MOMENTUM = 0.9

__all__ = [
    "FRESH_BATCHNORM_MOMENTUM",
    "batchnorm_layers",
    "check_batchnorm_momentum",
    "fresh_batchnorm_layers",
    "is_fresh_batchnorm",
    "set_batchnorm_momentum",
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
