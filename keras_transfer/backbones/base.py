"""The value every backbone loader returns."""

from __future__ import annotations

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
    """

    model: Any
    preprocessor: Any = None
    modality: str = "image"
    spec: str = ""
    input_shape: tuple | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(
                f"Expected modality to be one of {MODALITIES}. "
                f"Received: modality={self.modality!r}"
            )
