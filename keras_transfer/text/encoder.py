"""`TextEncoder`: raw strings -> one feature vector each (tokenizer + backbone)."""

from __future__ import annotations

import warnings
from typing import Any

from keras_transfer._backend import keras
from keras_transfer._deprecation import REMOVAL_VERSION

POOLINGS = ("avg", "cls", "pooled")
#: Deprecated pooling values (until keras_transfer 0.3) -> their one name.
RENAMED_POOLINGS = {"mean": "avg"}


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """Texts as a list of `str`: one string per example, checked.

    Accepts a list, tuple or 1-D array of `str` or UTF-8 `bytes`, and a one-column
    2-D array (``df[["text"]].values``), which is flattened. Anything else is
    refused rather than turned into text (``str(b"x")`` is ``"b'x'"``, ``str(None)``
    is ``"None"``, and one string iterates as its characters).

    Args:
        texts: the texts.
        name: str. How the message names them. Defaults to ``"texts"``.

    Returns:
        list of str.

    Raises:
        ValueError: one string, an empty sequence, an entry that is not a string
            (with its index), or a shape other than ``(n,)`` / ``(n, 1)``.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.text.encoder import check_texts
    assert check_texts([b"good", "bad"]) == ["good", "bad"]
    assert check_texts(np.array([["good"], ["bad"]], dtype=object)) == ["good", "bad"]
    try:
        check_texts("good")
    except ValueError as e:
        assert "wrap it in a list" in str(e)
    ```
    """
    import numpy as np

    if isinstance(texts, str | bytes):
        raise ValueError(
            f"Expected {name} to be a sequence of strings, not one string. "
            f"Received: {name}={texts!r}; wrap it in a list."
        )
    if hasattr(texts, "numpy"):  # a string tensor
        texts = texts.numpy()
    array = texts if isinstance(texts, np.ndarray) else np.asarray(texts, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"Expected {name} to be one string per example: shape (n,) or (n, 1). "
            f"Received an array of shape {array.shape}."
        )
    out = []
    for i, text in enumerate(array.tolist()):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise ValueError(
                f"Expected {name} to hold strings. Received {type(text).__name__} "
                f"{text!r} at index {i}."
            )
        out.append(text)
    if not out:
        raise ValueError(
            f"Expected {name} to be a non-empty sequence of strings. Received none."
        )
    return out


def check_pooling(pooling: Any, where: str, *, warn: bool = True) -> str:
    """Validates a text `pooling` value; maps the deprecated `"mean"` to `"avg"`.

    `"avg"` is the image builders' name for an average over positions (text masks
    the padding), see docs/vocabulary.md. `"mean"` is accepted for one release.

    Args:
        pooling: str. `"avg"`, `"cls"`, `"pooled"`, or the deprecated `"mean"`.
        where: str. The class or function named in the warning and the error.
        warn: bool. Emit a `DeprecationWarning` for `"mean"` (False for configs
            read from a saved file). Defaults to True.

    Returns:
        The pooling under its one name.

    Raises:
        ValueError: `pooling` is not one of the accepted values.

    Examples:
    ```python
    from keras_transfer.text.encoder import check_pooling
    assert check_pooling("cls", "TextEncoder") == "cls"
    assert check_pooling("mean", "TextEncoder", warn=False) == "avg"
    ```
    """
    if isinstance(pooling, str) and pooling in RENAMED_POOLINGS:
        new = RENAMED_POOLINGS[pooling]
        if warn:
            warnings.warn(
                f"{where}: pooling={pooling!r} is deprecated and will be removed in "
                f"keras_transfer {REMOVAL_VERSION}; use pooling={new!r} instead "
                "(same meaning). See docs/vocabulary.md.",
                DeprecationWarning,
                stacklevel=3,
            )
        return new
    if pooling not in POOLINGS:
        raise ValueError(
            f"Expected pooling to be one of {POOLINGS} in {where}. "
            f"Received: pooling={pooling!r}"
        )
    return pooling


@keras.saving.register_keras_serializable(package="keras_transfer")
class TextEncoder(keras.layers.Layer):
    """Tokenizes raw strings and encodes them with a KerasHub text backbone.

    The preprocessor (tokenizer + packer) and the backbone live inside one layer, so a
    functional model can take `dtype="string"` inputs and still be saved as `.keras`
    and reloaded (the layer declares its output shape, so Keras never has to trace the
    tokenizer before its vocabulary is restored).

    When the backbone has no trainable weights (frozen feature extractor), it always
    runs in inference mode (no dropout), like a frozen BatchNormalization.

    Args:
        backbone: keras.Model. A KerasHub text backbone whose outputs are a dict with
            `"sequence_output"` (and `"pooled_output"` for `pooling="pooled"`).
        preprocessor: keras.layers.Layer. Maps a batch of strings to the backbone's
            inputs (`token_ids`, `padding_mask`, ...), e.g. a
            `keras_hub.models.TextClassifierPreprocessor`.
        pooling: str. `"avg"` (mean over non-padding tokens, as sentence-transformers
            does; the image builders' name), `"cls"` (the first token) or `"pooled"`
            (the backbone's `pooled_output`). `"mean"` is a deprecated alias of
            `"avg"` (warns; saved configs holding it load silently). Defaults to
            `"avg"`.
        normalize: bool. L2-normalize the pooled vector. Defaults to False.
        **kwargs: Base layer arguments.

    Examples:
    ```python
    import tensorflow as tf
    from keras_transfer.text import TextEncoder, load_text_backbone
    backbone, preprocessor = load_text_backbone("minilm", sequence_length=32)
    encoder = TextEncoder(backbone, preprocessor, normalize=True)
    vectors = encoder(tf.constant(["a sentence", "another one"]))
    assert vectors.shape == (2, 384)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        preprocessor: keras.layers.Layer,
        pooling: str = "avg",
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        pooling = check_pooling(pooling, "TextEncoder")
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooling = pooling
        self.normalize = normalize
        self.hidden_dim = int(backbone.output["sequence_output"].shape[-1])

    def build(self, input_shape=None) -> None:
        self.built = True

    def unused_backbone_layers(self) -> list:
        """Backbone layers this pooling ignores; `set_trainable` keeps them frozen."""
        pooler = getattr(self.backbone, "pooled_dense", None)
        return [pooler] if pooler is not None and self.pooling != "pooled" else []

    def encode_tokens(self, inputs: dict, training=None):
        """Pools the backbone's outputs for already-tokenized `inputs`."""
        if not self.backbone.trainable_weights:
            training = False
        outputs = self.backbone(inputs, training=training)
        if self.pooling == "pooled":
            pooled = outputs["pooled_output"]
        elif self.pooling == "cls":
            pooled = outputs["sequence_output"][:, 0, :]
        else:
            sequence = outputs["sequence_output"]
            mask = keras.ops.cast(inputs["padding_mask"], sequence.dtype)[..., None]
            total = keras.ops.sum(sequence * mask, axis=1)
            pooled = total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1e-9)
        if self.normalize:
            pooled = pooled / keras.ops.maximum(
                keras.ops.norm(pooled, axis=-1, keepdims=True), 1e-12
            )
        return pooled

    def call(self, inputs, training=None):
        return self.encode_tokens(self.preprocessor(inputs), training=training)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((inputs.shape[0], self.hidden_dim), dtype="float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
                "pooling": self.pooling,
                "normalize": self.normalize,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextEncoder:
        # Configs saved before the rename hold pooling="mean": no warning (a saved
        # file is not the user's code; saving again writes "avg").
        config = dict(config)
        if "pooling" in config:
            config["pooling"] = check_pooling(
                config["pooling"], cls.__name__, warn=False
            )
        return cls(**config)
