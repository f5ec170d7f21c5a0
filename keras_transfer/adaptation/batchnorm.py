"""AdaBN: domain-specific BatchNormalization statistics (Li et al. 2016)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from keras_transfer.data.files import lazy_asarray
from keras_transfer.normalization import (
    FRESH_BATCHNORM_MOMENTUM,
    recompute_batchnorm_statistics,
    under_distribution_strategy,
)
from keras_transfer.normalization import batchnorm_layers as _batchnorm_layers

#: Momentum of the encoder's trainable BatchNormalization layers while `adapt` trains
#: (PyTorch's default, as the bottleneck's, and the builders' for untrained
#: BatchNorm: see `batchnorm_momentum` and `keras_transfer.normalization`).
ADAPT_BATCHNORM_MOMENTUM = FRESH_BATCHNORM_MOMENTUM


@contextlib.contextmanager
def batchnorm_momentum(model: Any, momentum: float | None) -> Iterator[list]:
    """Lowers the momentum of ``model``'s trainable BatchNormalization layers.

    Inside the block, every trainable BatchNormalization layer whose momentum is
    above ``momentum`` uses ``momentum``; on leaving it (also on an error) each gets
    its own value back. Keras' default, 0.99, keeps 84% of the moving statistics'
    starting point after 17 steps (one epoch of 600 images at batch 32): a network
    trained from scratch, or a backbone meeting new data, is then evaluated in
    inference mode with statistics that lag its weights by epochs, and `adapt`'s
    warm-up, collapse guard and candidate floor read that evaluation. Frozen layers
    run in inference mode and are left alone.

    Args:
        model: keras Model or Layer.
        momentum: float in [0, 1) or None. None changes nothing.

    Yields:
        list. ``(layer, its own momentum)`` for every layer changed.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.batchnorm import batchnorm_momentum
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    with batchnorm_momentum(model, 0.9) as changed:
        assert len(changed) == 1 and model.layers[0].momentum == 0.9
    assert model.layers[0].momentum == 0.99
    ```
    """
    if momentum is not None and not 0.0 <= momentum < 1.0:
        raise ValueError(
            f"Expected a BatchNormalization momentum in [0, 1) or None. "
            f"Received: {momentum!r}"
        )
    layers = []
    if momentum is not None:
        layers = [
            layer
            for layer in _batchnorm_layers(model)
            if layer.trainable and layer.momentum > momentum
        ]
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = float(momentum)
        yield list(zip(layers, saved))
    finally:
        for layer, value in zip(layers, saved):
            layer.momentum = value


#: What ``adapt(target_batchnorm=...)`` accepts.
TARGET_BATCHNORM_CHOICES = ("auto", True, False)
#: ``adapt``'s default: ``"auto"``, the bottleneck's statistics re-estimated when it is
#: the only BatchNorm that trained (+1.7 and +0.7 points for ``auto`` on eight pairs,
#: claims R2 and R4 held; with a backbone training BatchNorm of its own +1.4 and +0.8,
#: below the +2 set before the runs: off). docs/domain_adaptation.md, "BatchNorm
#: statistics re-estimated on the target after adapting".
DEFAULT_TARGET_BATCHNORM: bool | str = "auto"


def check_target_batchnorm(value: Any) -> None:
    """Raises a `ValueError` unless ``value`` is ``"auto"``, True or False."""
    if isinstance(value, bool) or (isinstance(value, str) and value == "auto"):
        return
    raise ValueError(
        "Expected target_batchnorm to be 'auto' (when the bottleneck is the only "
        "BatchNormalization layer that trained), True (every trained "
        "BatchNormalization layer, the backbone's included) or False. Received: "
        f"target_batchnorm={value!r}"
    )


#: ``adapt``'s default for ``domain_batchnorm`` (domain-specific batch statistics
#: while training): off until measured on pairs no choice was made on
#: (docs/domain_adaptation.md, "Domain-specific batch statistics while training").
DEFAULT_DOMAIN_BATCHNORM = False


def check_domain_batchnorm(value: Any, target_batchnorm: Any, strategy: Any) -> None:
    """Raises a `ValueError` for a ``domain_batchnorm`` that `adapt` cannot run.

    Args:
        value: what was passed as ``domain_batchnorm`` (True or False).
        target_batchnorm: ``adapt``'s ``target_batchnorm``: with True,
            it must not be False (a model trained with the target's own statistics
            predicts the target with them).
        strategy: ``adapt``'s ``strategy``: with True, it must be None or the
            default strategy (the target statistics are re-estimated outside a
            distribution strategy).

    Examples:
    ```python
    from keras_transfer.adaptation.batchnorm import check_domain_batchnorm
    check_domain_batchnorm(True, "auto", None)
    try:
        check_domain_batchnorm(True, False, None)
    except ValueError as err:
        assert "target_batchnorm" in str(err)
    ```
    """
    if not isinstance(value, bool):
        raise ValueError(
            "Expected domain_batchnorm to be True or False. Received: "
            f"domain_batchnorm={value!r}"
        )
    if value and target_batchnorm is False:
        raise ValueError(
            "domain_batchnorm=True trains each domain with its own BatchNorm "
            "statistics, so the returned model predicts the target with the "
            "target's: target_batchnorm must be 'auto' or True with it. Received: "
            "target_batchnorm=False"
        )
    default = strategy is None or (
        strategy == "default"
        if isinstance(strategy, str)
        else type(strategy).__name__ == "_DefaultDistributionStrategy"
    )
    if value and not default:
        raise ValueError(
            "domain_batchnorm=True re-estimates each candidate's statistics on the "
            "target outside a distribution strategy, so it runs without one. "
            f"Received: strategy={strategy!r}"
        )


def target_batchnorm_statistics(
    model: Any,
    x_target: Any,
    when: bool | str,
    *,
    backbone: Any = None,
    batch_size: int = 128,
    max_batches: int | None = 200,
) -> tuple[int, str | None]:
    """Re-estimates the trained BatchNorm layers' statistics on the target inputs.

    After `adapt` trains, each BatchNormalization layer that trained holds a moving
    average (momentum 0.9) of the batches it saw last: half source and half
    target for every alignment method, source only for ``"source_only"``. The
    returned model predicts on the target, so its statistics become the average
    of the target's batch statistics (AdaBN, Li et al. 2016, after adaptation):
    one pass over ``x_target`` in training mode, no label, weights unchanged
    (`keras_transfer.normalization.recompute_batchnorm_statistics`). Frozen
    BatchNorm layers (pretrained statistics kept by ``train_batchnorm``) are left
    alone.

    Args:
        model: keras Model, the inference model of the trained candidate.
        x_target: array. Unlabelled target inputs.
        when: ``"auto"``: only when ``backbone`` has no trainable
            BatchNormalization layer of its own (none, or frozen pretrained ones:
            the bottleneck's is then the only one that trained); True: every
            trainable BatchNormalization layer of ``model``; False: never.
        backbone: keras Model or Layer, the encoder (read by ``"auto"``).
        batch_size: int. Batch size of the pass. Defaults to 128.
        max_batches: int or None. Cap on the batches read. Defaults to 200.

    Returns:
        tuple ``(layers updated, why it was skipped or None)``.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.batchnorm import target_batchnorm_statistics
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    x = np.full((64, 3), 2.0, "float32")
    assert target_batchnorm_statistics(model, x, True) == (1, None)
    assert np.allclose(model.layers[0].moving_mean.numpy(), 2.0)
    assert target_batchnorm_statistics(model, x, False) == (0, None)
    # "auto": not when the backbone trains BatchNorm of its own
    assert target_batchnorm_statistics(model, x, "auto", backbone=model) == (0, None)
    assert target_batchnorm_statistics(model, x, "auto") == (1, None)
    ```
    """
    check_target_batchnorm(when)
    if when is False:
        return 0, None
    if when == "auto":
        own = [] if backbone is None else _batchnorm_layers(backbone)
        if any(layer.trainable for layer in own):
            return 0, None
    if not any(layer.trainable for layer in _batchnorm_layers(model)):
        return 0, None
    if under_distribution_strategy(model):
        return 0, "the model lives under a distribution strategy"
    n = recompute_batchnorm_statistics(
        model,
        lazy_asarray(x_target),
        include_frozen=False,
        batch_size=batch_size,
        max_batches=max_batches,
    )
    return n, None


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
    return recompute_batchnorm_statistics(
        model,
        lazy_asarray(x),
        include_frozen=True,
        batch_size=batch_size,
        max_batches=None,
    )
