"""Mixed precision for builder-made models: the backbone computes in bfloat16 or
float16, the head, the outputs and the loss stay float32.

`compiling.compile_model(mixed_precision=...)` (and so the builders'
`mixed_precision=` argument) calls `set_precision`; export calls `float32_model` for
formats without mixed-precision kernels (TFLite). Measured in
`benchmarks/compiled_steps.py` (docs/performance.md).
"""

from __future__ import annotations

import warnings
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import find_backbone

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def check_policy(mixed_precision: Any) -> None:
    if mixed_precision not in POLICIES:
        raise ValueError(
            f"Expected mixed_precision to be one of {POLICIES} or None. Received: "
            f"mixed_precision={mixed_precision!r}"
        )


def set_precision(model: keras.Model, mixed_precision: str) -> keras.Model:
    """Computes the model's backbone in `mixed_precision`; the rest stays float32.

    Every layer of the nested backbone (`backbones.find_backbone`) gets the dtype
    policy (variables stay float32, computations run in bfloat16 or float16);
    preprocessing, augmentation and the head keep float32, so the outputs, the loss
    and exports are float32. The policy is part of each layer's config: a saved
    and reloaded model keeps it, unless the backbone's class leaves it out of its
    config (keras-hub's `VGGBackbone`; see `config_keeps_policy`): then a
    `UserWarning` says that a reloaded copy computes in float32. Call before
    compiling (`compile_model` does).

    Args:
        model: keras.Model. A builder-made model (with a nested backbone).
        mixed_precision: str. `"mixed_bfloat16"`, `"mixed_float16"` or
            `"float32"` (undo).

    Returns:
        The model.

    Raises:
        ValueError: an unknown policy, or no nested backbone.

    Examples:
    ```python
    from keras_transfer import build_classifier
    from keras_transfer.precision import set_precision
    model = build_classifier("keras_applications:MobileNetV3Small", 3,
                             weights=None, input_shape=(32, 32, 3))
    set_precision(model, "mixed_bfloat16")
    assert model.backbone.layers[-1].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"  # the head
    ```
    """
    check_policy(mixed_precision)
    backbone = find_backbone(model)
    if backbone is None:
        raise ValueError(
            f"Expected a model with a nested backbone for mixed_precision="
            f"{mixed_precision!r}. Received: a model without one ({model.name!r}). "
            "Build it with build_classifier/build_regressor, or set a Keras dtype "
            "policy on its layers yourself."
        )
    set_layer_precision(backbone, mixed_precision, stacklevel=3)
    return model


def set_layer_precision(layer: Any, mixed_precision: str, stacklevel: int = 2) -> None:
    """Gives ``layer`` and every layer nested in it the dtype policy
    ``mixed_precision``, and warns (``UserWarning``) when a nested model's config
    does not record it (see `config_keeps_policy`). `set_precision` applies it to a
    builder-made model's backbone, `adapt(mixed_precision=...)` to its encoder.

    Raises:
        ValueError: an unknown policy.
    """
    check_policy(mixed_precision)
    nested = list(layer._flatten_layers(include_self=True, recursive=True))
    for sublayer in nested:
        sublayer.dtype_policy = mixed_precision
    lossy = [
        sub
        for sub in nested
        if isinstance(sub, keras.Model) and not config_keeps_policy(sub)
    ]
    if mixed_precision != "float32" and lossy:
        warnings.warn(
            f"{type(lossy[0]).__name__}.get_config() does not record its dtype "
            f"policy, so this model computes it in {mixed_precision} here "
            "but a copy saved to .keras reloads it in float32 (same weights, "
            "float32 speed). Keras-hub's VGGBackbone and MobileNetV5Backbone are "
            "such classes (keras-hub 0.32).",
            UserWarning,
            stacklevel=stacklevel,
        )


def config_keeps_policy(layer: Any) -> bool:
    """Whether a `.keras` copy of `layer` keeps the dtype policies set on it.

    True when its config records them: its own ``"dtype"`` (Keras layers, keras-hub
    backbones that chain to `Backbone.get_config`) or its sublayers' configs (a
    functional or Sequential model). False for classes whose `get_config` returns
    only constructor arguments (keras-hub's `VGGBackbone`): they rebuild in float32.
    """
    try:
        config = layer.get_config()
    except NotImplementedError:
        return False
    return "dtype" in config or "layers" in config


def float32_model(model: Any) -> Any:
    """`model` itself, or a float32 copy of it when some layers compute in mixed
    precision (for formats without bfloat16/float16 kernels, e.g. TFLite).

    The copy is made from the model's config (`keras.models.clone_model`), its
    mixed-precision layers set to float32, and the same weights; `model` is left
    as it was.

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier
    from keras_transfer.precision import float32_model
    model = build_classifier("keras_applications:MobileNetV3Small", 3, weights=None,
                             input_shape=(32, 32, 3), mixed_precision="mixed_bfloat16")
    copy = float32_model(model)
    assert copy is not model and float32_model(copy) is copy
    x = np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0),
                       atol=1e-2)
    ```
    """
    if not isinstance(model, keras.layers.Layer) or not _mixed_layers(model):
        return model
    copy = keras.models.clone_model(model)
    for layer in _mixed_layers(copy):
        layer.dtype_policy = "float32"
    copy.set_weights(model.get_weights())
    return copy


def _mixed_layers(model: Any) -> list:
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if layer.dtype_policy.name in POLICIES[1:]
    ]
