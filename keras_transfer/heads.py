"""Heads: pooling of backbone features and the classification / regression tops."""

from __future__ import annotations

import logging
from typing import Any

from keras_transfer._backend import keras

logger = logging.getLogger("keras_transfer")

HEADS = ("linear", "mlp")


POOLINGS = ("avg", "max", "flatten", "auto")
# "auto" flattens feature maps of at most this many positions (4x4), pools larger.
AUTO_FLATTEN_POSITIONS = 16


def pool_features(features: Any, pooling: str = "avg") -> Any:
    """Pools backbone features to `(batch, channels)`, chosen by their rank.

    Rank 4 (feature maps): global average (or max) pooling over space. Rank 3
    (sequences): global pooling over time. Rank 2: unchanged. A dict (KerasHub text
    backbones): `"pooled_output"` when present, else the first ([CLS]) token of
    `"sequence_output"`. `"flatten"` keeps every position instead (`Flatten`, for
    features of a known size): the layout of small feature maps, which a global
    pool discards (measured for adaptation in docs/domain_adaptation.md, "Pooling
    of the encoder"). `"auto"` flattens feature maps of a known size with at most
    `AUTO_FLATTEN_POSITIONS` (16: 4x4) positions and average-pools everything else.

    Args:
        features: A symbolic tensor or dict of them.
        pooling: str. `"avg"`, `"max"`, `"flatten"` or `"auto"`. Defaults to
            `"avg"`.

    Returns:
        A rank-2 tensor.

    Examples:
    ```python
    import keras
    from keras_transfer.heads import pool_features
    assert pool_features(keras.Input((4, 4, 8))).shape == (None, 8)
    ```
    """
    if pooling not in POOLINGS:
        raise ValueError(
            f"Expected pooling to be 'avg', 'max', 'flatten' or 'auto'. Received: "
            f"pooling={pooling!r}"
        )
    if isinstance(features, dict):
        if "pooled_output" in features:
            return features["pooled_output"]
        if "sequence_output" in features:
            return keras.layers.Lambda(lambda t: t[:, 0, :], name="cls_token")(
                features["sequence_output"]
            )
        raise ValueError(
            "Expected dict features with 'pooled_output' or 'sequence_output'. "
            f"Received keys: {sorted(features)}"
        )
    rank, requested = len(features.shape), pooling
    if pooling == "auto":
        pooling = "flatten" if _small_map(features.shape) else "avg"
    if rank in (3, 4) and pooling != requested:
        logger.info(
            "[pooling] auto: feature maps of shape %s %s (flattened when they "
            "have at most %d positions)",
            tuple(features.shape[1:]),
            "flattened" if pooling == "flatten" else "average-pooled",
            AUTO_FLATTEN_POSITIONS,
        )
    if rank in (3, 4) and pooling == "flatten":
        if any(dim is None for dim in features.shape[1:]):
            raise ValueError(
                "pooling='flatten' needs features of a known size. Received shape "
                f"{tuple(features.shape)}; give the backbone a fixed input_shape, "
                "or use pooling='avg' or 'max'."
            )
        return keras.layers.Flatten(name="pool")(features)
    if rank in (3, 4):  # sequences pool over time, feature maps over space
        cls = {
            ("avg", 3): keras.layers.GlobalAveragePooling1D,
            ("max", 3): keras.layers.GlobalMaxPooling1D,
            ("avg", 4): keras.layers.GlobalAveragePooling2D,
            ("max", 4): keras.layers.GlobalMaxPooling2D,
        }[pooling, rank]
        return cls(name="pool")(features)
    if rank == 2:
        return features
    raise ValueError(
        "Expected backbone features of rank 2, 3 or 4. Received shape "
        f"{tuple(features.shape)}."
    )


def _small_map(shape: tuple) -> bool:
    """A rank-4 feature map of known height and width with at most
    `AUTO_FLATTEN_POSITIONS` positions."""
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return False
    return shape[1] * shape[2] <= AUTO_FLATTEN_POSITIONS


def _body(x: Any, head: str, dropout: float, head_units: int) -> Any:
    if head not in HEADS:
        raise ValueError(f"Expected head to be one of {HEADS}. Received: head={head!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"Expected dropout to be in [0, 1). Received: dropout={dropout}"
        )
    if head == "mlp":
        if not isinstance(head_units, int) or head_units < 1:
            raise ValueError(
                f"Expected head_units to be an int >= 1. Received: head_units={head_units!r}"
            )
        if dropout:
            x = keras.layers.Dropout(dropout, name="head_dropout_0")(x)
        x = keras.layers.Dense(head_units, activation="relu", name="head_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return x


def classification_head(
    features: Any,
    num_classes: int,
    *,
    head: str = "linear",
    dropout: float = 0.2,
    multi_label: bool = False,
    head_units: int = 256,
    pooling: str = "avg",
) -> Any:
    """Adds pooling and a classification head; returns class probabilities.

    Args:
        features: Backbone output (symbolic).
        num_classes: int. Number of classes (>= 2; >= 1 with `multi_label`).
        head: str. `"linear"` (dropout + dense) or `"mlp"` (one hidden ReLU layer of
            `head_units`). Defaults to `"linear"`.
        dropout: float. Dropout rate before the output layer. Defaults to 0.2.
        multi_label: bool. Sigmoid per class instead of softmax. Defaults to False.
        head_units: int. Hidden width of the `"mlp"` head. Defaults to 256.
        pooling: str. `"avg"`, `"max"` or `"flatten"` (see `pool_features`).
            Defaults to `"avg"`.

    Returns:
        The probabilities tensor, named `"predictions"`.
    """
    minimum = 1 if multi_label else 2
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or (num_classes < minimum)
    ):
        raise ValueError(
            f"Expected num_classes to be an int >= {minimum}. "
            f"Received: num_classes={num_classes!r}"
        )
    x = _body(pool_features(features, pooling), head, dropout, head_units)
    activation = "sigmoid" if multi_label else "softmax"
    return keras.layers.Dense(
        num_classes, activation=activation, dtype="float32", name="predictions"
    )(x)


def regression_head(
    features: Any,
    num_outputs: int = 1,
    *,
    head: str = "linear",
    dropout: float = 0.0,
    head_units: int = 256,
    pooling: str = "avg",
) -> Any:
    """Adds pooling and a linear regression output of `num_outputs` values."""
    if (
        isinstance(num_outputs, bool)
        or not isinstance(num_outputs, int)
        or (num_outputs < 1)
    ):
        raise ValueError(
            f"Expected num_outputs to be an int >= 1. Received: num_outputs={num_outputs!r}"
        )
    x = _body(pool_features(features, pooling), head, dropout, head_units)
    return keras.layers.Dense(num_outputs, dtype="float32", name="predictions")(x)


def ends_in_softmax(model: Any) -> bool:
    """Tells whether a model's output is a softmax (probabilities) rather than logits.

    Args:
        model: keras.Model. A Sequential or functional model.

    Returns:
        True when the last layer is a ``Softmax`` layer or has a softmax activation.

    Examples:
    ```python
    import keras
    from keras_transfer.heads import ends_in_softmax
    probs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert ends_in_softmax(probs) and not ends_in_softmax(logits)
    ```
    """
    layers = getattr(model, "layers", None) or [model]
    last = layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    return name == "softmax"
