"""AdaBN: domain-specific BatchNormalization statistics (Li et al. 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras


def _batchnorm_layers(model: Any) -> list:
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def has_batchnorm(model: Any) -> bool:
    """Whether ``model`` holds any `keras.layers.BatchNormalization` layer."""
    return bool(_batchnorm_layers(model))


def adapt_batchnorm(model: Any, x: Any, *, batch_size: int = 128) -> int:
    """Re-estimates every BatchNormalization layer's moving statistics on ``x``.

    The moving mean and variance become the average of the batch statistics of
    ``x`` (the target domain), layer by layer as the data flows; weights (γ, β and
    every other layer) are unchanged. This is AdaBN: normalising each domain with
    its own statistics. Frozen BatchNorm layers are updated too.

    Args:
        model: keras Model holding BatchNormalization layers.
        x: array. Unlabelled inputs of the domain to normalise for.
        batch_size: int. Batch size of the passes. Defaults to 128.

    Returns:
        int. Number of BatchNormalization layers updated (0: nothing to do).

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import adapt_batchnorm
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(256, 3)).astype("float32")
    assert adapt_batchnorm(model, x) == 1
    assert np.allclose(model.layers[0].moving_mean.numpy(), x.mean(0), atol=0.05)
    ```

    References:
        Li et al. 2016, "Revisiting Batch Normalization For Practical Domain
        Adaptation", ICLR workshops.
    """
    layers = _batchnorm_layers(model)
    if not layers:
        return 0
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    x = np.asarray(x)
    try:
        for layer in layers:
            layer.trainable = True
        for i, start in enumerate(range(0, len(x), batch_size)):
            for layer in layers:  # cumulative average: m_i = i / (i + 1)
                layer.momentum = i / (i + 1.0)
            model(x[start : start + batch_size], training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum = momentum
            layer.trainable = trainable
    return len(layers)
