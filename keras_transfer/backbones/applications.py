"""`keras.applications` models as headless backbones with their `preprocess_input`."""

from __future__ import annotations

import importlib
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones.base import LoadedBackbone


def _available() -> list[str]:
    return sorted(
        n for n in dir(keras.applications) if n[0].isupper() and n != "ImageNetWeights"
    )


def _preprocess_module(name: str) -> Any:
    fn = getattr(keras.applications, name)
    module_name = fn.__module__.rsplit(".", 1)[-1]
    return importlib.import_module(f"keras.applications.{module_name}")


@keras.saving.register_keras_serializable(package="keras_transfer")
class ApplicationPreprocessing(keras.layers.Layer):
    """Applies `keras.applications.<module>.preprocess_input` for one application.

    Storing the application name (not a function) keeps the layer serializable, so a
    model with raw images in survives `.keras` save/load and `model.export`.

    Args:
        application: str. A `keras.applications` model name, e.g. `"ResNet50"`.
        **kwargs: Base layer keyword arguments.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.backbones import ApplicationPreprocessing
    layer = ApplicationPreprocessing("ResNet50")
    assert layer(np.zeros((1, 8, 8, 3), "float32")).shape == (1, 8, 8, 3)
    ```
    """

    def __init__(self, application: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if application not in _available():
            raise ValueError(
                f"Unknown keras.applications model {application!r}. Accepted: "
                f"{', '.join(_available())}"
            )
        self.application = application
        self._module = _preprocess_module(application)

    def call(self, inputs):
        return self._module.preprocess_input(keras.ops.cast(inputs, "float32"))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"application": self.application})
        return config


def load_keras_application(
    rest: str,
    *,
    weights: str | None = "imagenet",
    input_shape: tuple | None = None,
    **kwargs: Any,
) -> LoadedBackbone:
    """Loads `keras.applications.<rest>(include_top=False, weights=..., ...)`.

    Args:
        rest: str. The application name, e.g. `"MobileNetV3Small"`.
        weights: str or None. `"imagenet"`, None (random init) or a weights path.
            Defaults to `"imagenet"` (downloaded by Keras on first use).
        input_shape: tuple or None. Image shape, e.g. `(96, 96, 3)`.
        **kwargs: Passed to the application (not `include_top`: the head is ours).

    Returns:
        A `LoadedBackbone` whose preprocessor is an `ApplicationPreprocessing` layer.
    """
    if rest not in _available():
        raise ValueError(
            f"Unknown keras.applications model {rest!r}. Accepted: "
            f"{', '.join(_available())}"
        )
    if kwargs.pop("include_top", False):
        raise ValueError(
            "Expected include_top=False for a backbone: keras-transfer adds its own "
            "head. Received: include_top=True"
        )
    fn = getattr(keras.applications, rest)
    try:
        model = fn(
            include_top=False, weights=weights, input_shape=input_shape, **kwargs
        )
    except Exception as e:
        if weights is not None and ("URL" in str(e) or "fetch" in str(e).lower()):
            raise ValueError(
                f"Could not download the {weights!r} weights of {rest} ({e}). If this "
                "machine is offline, pass a local weights file path as weights, or "
                "pretrain a backbone offline with `keras-transfer pretrain` and use "
                "'keras_hub:<preset dir>'. (weights=None gives random weights: "
                "useful only if the whole backbone trains.)"
            ) from e
        raise
    shape = tuple(model.input_shape[1:])
    return LoadedBackbone(
        model=model,
        preprocessor=ApplicationPreprocessing(rest),
        modality="image",
        spec=f"keras_applications:{rest}",
        input_shape=shape,
        metadata={"application": rest, "weights": weights},
        pretrained=weights is not None,
    )
