"""Convolution kernels drawn afresh from a named Keras initializer (`pretrain_preset`'s
``conv_initializer``)."""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras


def check_initializer(name: Any) -> None:
    """Raises a `ValueError` unless ``name`` is None or a Keras initializer name."""
    try:
        ok = name is None or (isinstance(name, str) and keras.initializers.get(name))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            "Expected conv_initializer to be None or a Keras initializer name such as "
            f"'he_normal' or 'glorot_uniform'. Received: conv_initializer={name!r}"
        )


def initialize_convolutions(backbone: Any, name: str, seed: int) -> None:
    """Draws every Conv2D kernel of `backbone` from the initializer `name`
    (checked by the caller, `check_initializer`), seeded
    ``seed + i`` for the i-th convolution."""
    convolutions = [
        layer
        for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Conv2D)
    ]
    for i, layer in enumerate(convolutions):
        init = keras.initializers.get(
            {"class_name": name, "config": {"seed": seed + i}}
        )
        layer.kernel.assign(init(tuple(layer.kernel.shape), dtype=layer.kernel.dtype))


__all__ = ["check_initializer", "initialize_convolutions"]
