"""The value every backbone loader returns, and the check of its weights' origin."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

MODALITIES = ("image", "text", "features")


@dataclass
class LoadedBackbone:
    """A feature extractor plus the preprocessing it needs.

    Attributes:
        model: keras.Model or keras.layers.Layer. Maps preprocessed inputs to features
            (a 4-D feature map, a 3-D sequence, a 2-D vector, or a dict of those for
            KerasHub text backbones).
        preprocessor: keras.layers.Layer or None. Maps raw inputs (e.g. uint8 images in
            [0, 255]) to what `model` expects. Builders put it in front of the model
            when `include_preprocessing=True`; data helpers can apply it in `tf.data`.
        modality: str. One of `"image"`, `"text"`, `"features"`.
        spec: str. The spec the backbone was loaded from (or the class name).
        input_shape: tuple or None. Shape of one raw input, without the batch axis,
            when known.
        metadata: dict. Loader-specific facts (preset name, hub handle, ...).
        pretrained: bool or None. True when trained weights were loaded, False when
            the weights are a random initialization (`weights=None`,
            `load_weights=False`), None when the loader cannot tell (a model passed
            in). `warn_if_frozen_random` reads it.
    """

    model: Any
    preprocessor: Any = None
    modality: str = "image"
    spec: str = ""
    input_shape: tuple | None = None
    metadata: dict = field(default_factory=dict)
    pretrained: bool | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(
                f"Expected modality to be one of {MODALITIES}. "
                f"Received: modality={self.modality!r}"
            )


logger = logging.getLogger("keras_transfer")

OFFLINE_HINT = (
    "Offline, make a pretrained backbone first with `keras-transfer pretrain` (it "
    "trains one on a labelled folder or the built-in digits and saves a KerasHub "
    "preset) and pass it as model.backbone='keras_hub:<preset dir>'."
)


def warn_if_frozen_random(backbone: LoadedBackbone, unfreeze_depth: Any) -> bool:
    """Warns when a frozen backbone has random weights: it cannot transfer anything.

    A frozen (`unfreeze_depth=0`) randomly initialised backbone gives features that
    carry no information about the input (a frozen random MobileNetV3Small outputs
    pooled features of ~1e-11 with BatchNorm in inference mode), so training only the
    head leaves the loss at ln(num_classes). This emits a `UserWarning` and a log line
    on the `keras_transfer` logger naming the backbone and what to change.

    Args:
        backbone: LoadedBackbone. The loaded backbone (its `pretrained` flag).
        unfreeze_depth: int or str. The depth the builder applies.

    Returns:
        True when it warned.

    Examples:
    ```python
    import warnings
    from keras_transfer.backbones import LoadedBackbone, warn_if_frozen_random
    bb = LoadedBackbone(model=None, spec="keras_applications:X", pretrained=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert warn_if_frozen_random(bb, 0)
    assert not warn_if_frozen_random(bb, "all")
    ```
    """
    if backbone.pretrained is not False or unfreeze_depth != 0:
        return False
    message = (
        f"The backbone {backbone.spec!r} has random weights (no pretrained weights "
        "were loaded) and is frozen (unfreeze_depth=0): its features carry no "
        "information, so training only the head learns nothing (the loss stays at "
        "ln(num_classes)). Load pretrained weights (e.g. weights='imagenet' or a "
        "local weights file in backbone_kwargs), or let the backbone train "
        "(unfreeze_depth='all'; in the CLI training.fine_tune_epochs > 0). "
        + OFFLINE_HINT
    )
    # a configured log gets it too; without one, Python would print it twice
    if logger.hasHandlers():
        logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)
    return True


def warn_if_frozen_batchnorm_random(
    backbone: LoadedBackbone, unfreeze_depth: Any, train_batchnorm: bool | str
) -> bool:
    """Warns when a backbone without pretrained weights trains with frozen BatchNorm.

    Keeping BatchNormalization frozen and in inference mode while the rest of the
    backbone trains (``train_batchnorm=False``, the keras.io rule) protects
    *pretrained* statistics. A randomly initialised backbone has none: its
    BatchNorm layers then stay at mean 0 / variance 1 and normalise nothing, and a
    deep network may not train at all (MobileNetV3Small with ``weights=None`` and
    every other layer trainable stayed at chance through 10 epochs of `adapt` on
    digits; with ``train_batchnorm=True`` it reached 0.87 held-out accuracy in 5).
    This emits a `UserWarning` and a log line naming the fix.

    Args:
        backbone: LoadedBackbone. The loaded backbone (its `pretrained` flag and
            model).
        unfreeze_depth: int, str or None. The depth the builder applies (None:
            the backbone's own trainable flags).
        train_batchnorm: bool or `"auto"`. Whether unfrozen BatchNorm layers train
            (`"auto"` trains untrained ones, so only False warns).

    Returns:
        True when it warned.

    Examples:
    ```python
    import warnings
    import keras
    from keras_transfer.backbones import LoadedBackbone
    from keras_transfer.backbones.base import warn_if_frozen_batchnorm_random
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    bb = LoadedBackbone(model=model, spec="keras_applications:X", pretrained=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert warn_if_frozen_batchnorm_random(bb, "all", train_batchnorm=False)
    assert not warn_if_frozen_batchnorm_random(bb, "all", train_batchnorm=True)
    assert not warn_if_frozen_batchnorm_random(bb, "all", train_batchnorm="auto")
    assert not warn_if_frozen_batchnorm_random(bb, 0, train_batchnorm=False)
    ```
    """
    if (
        backbone.pretrained is not False
        or train_batchnorm
        or unfreeze_depth in (0, None)
        or backbone.model is None
    ):
        return False
    from keras_transfer._backend import keras

    norms = [
        layer
        for layer in backbone.model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not norms:
        return False
    message = (
        f"The backbone {backbone.spec!r} has random weights (no pretrained weights "
        f"were loaded), yet its {len(norms)} BatchNormalization layers stay frozen "
        "at their initial statistics while the rest trains (train_batchnorm=False, "
        "the rule for pretrained statistics): they normalise nothing, and a deep "
        "network may not train at all. Pass train_batchnorm='auto' (the default: "
        "untrained BatchNorm layers train) or True (CLI: model.train_batchnorm: "
        "auto), or load pretrained weights. " + OFFLINE_HINT
    )
    # a configured log gets it too; without one, Python would print it twice
    if logger.hasHandlers():
        logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)
    return True
