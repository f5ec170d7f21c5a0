"""Export of text classifiers: SavedModel on raw strings, TFLite on token ids.

What converts (TF 2.21, keras-hub 0.32, measured): the SavedModel keeps the whole
graph, tokenizer included, and serves raw strings. TFLite does not: the WordPiece
tokenizer runs TensorFlow Text ops (`RegexSplitWithOffsets`,
`FastWordpieceTokenizeWithOffsets`...) that are neither TFLite builtins nor TF Select
(Flex) ops, so a file with the tokenizer inside cannot run in a stock LiteRT
interpreter. `export_text_tflite` therefore exports the model *after* the tokenizer
(int32 token ids in, probabilities out) and the app tokenizes (with the same
vocabulary: `tokenize_for_tflite` here, or any WordPiece implementation); asking for
the tokenizer inside raises `UnsupportedOpError` instead of writing a broken file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.text.encoder import TextEncoder, check_texts


def _as_bytes(texts: Sequence[str]) -> np.ndarray:
    """A `bytes_` array (the export checks refuse object arrays of str)."""
    return np.array([str(t).encode("utf-8") for t in texts], dtype=bytes)


def _string_tensor(x: Any) -> tf.Tensor:
    """Passes strings through as a tf.string tensor (numpy bytes or tf tensors)."""
    return tf.convert_to_tensor(x, tf.string)


def _encoder_and_head(model: keras.Model) -> tuple[TextEncoder, list]:
    encoders = [layer for layer in model.layers if isinstance(layer, TextEncoder)]
    if len(encoders) != 1:
        raise ValueError(
            "Expected a model made by build_text_classifier (one TextEncoder layer "
            f"followed by head layers). Received a model with {len(encoders)} "
            "TextEncoder layers."
        )
    index = model.layers.index(encoders[0])
    return encoders[0], model.layers[index + 1 :]


@keras.saving.register_keras_serializable(package="keras_transfer")
class TokenIdsEncoder(keras.layers.Layer):
    """Runs a `TextEncoder` on int32 token ids (padding id 0), skipping the tokenizer.

    Args:
        encoder: TextEncoder. The encoder whose backbone and pooling are used.
        pad_id: int. Token id of padding. Defaults to 0 (BERT).
        **kwargs: Base layer arguments.
    """

    def __init__(self, encoder: TextEncoder, pad_id: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder
        self.pad_id = pad_id

    def call(self, token_ids, training=None):
        token_ids = keras.ops.cast(token_ids, "int32")
        inputs = {
            "token_ids": token_ids,
            "padding_mask": keras.ops.not_equal(token_ids, self.pad_id),
            "segment_ids": keras.ops.zeros_like(token_ids),
        }
        return self.encoder.encode_tokens(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.encoder.hidden_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "pad_id": self.pad_id,
            }
        )
        return config


def token_ids_model(model: keras.Model) -> keras.Model:
    """The part of a text classifier after its tokenizer: token ids -> probabilities.

    Args:
        model: keras.Model made by `build_text_classifier`.

    Returns:
        A `keras.Model` taking int32 token ids of shape `(batch, sequence_length)`
        (padding = 0) and sharing the weights of `model`.
    """
    encoder, head = _encoder_and_head(model)
    length = int(encoder.preprocessor.sequence_length)
    inputs = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    x = TokenIdsEncoder(encoder, name="token_ids_encoder")(inputs)
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_token_ids")


def tokenize_for_tflite(model: keras.Model, texts: Sequence[str]) -> np.ndarray:
    """Tokenizes `texts` as the TFLite file of `export_text_tflite` expects.

    Args:
        model: keras.Model made by `build_text_classifier`.
        texts: sequence of str.

    Returns:
        `int32` array of shape `(len(texts), sequence_length)`.
    """
    encoder, _ = _encoder_and_head(model)
    tokens = encoder.preprocessor(tf.constant(check_texts(texts)))
    return np.asarray(tokens["token_ids"], dtype="int32")


def export_text_saved_model(
    model: keras.Model,
    path: str | os.PathLike | None = None,
    *,
    verify_texts: Sequence[str] | None = None,
    class_names: list[str] | None = None,
    overwrite: bool = False,
    **kwargs: Any,
):
    """Exports a text classifier as a verified SavedModel that takes raw strings.

    The signature `serving_default` takes `inputs`, a `(batch,)` string tensor, and
    returns `probabilities`, `class_ids` (and `class_names`). The tokenizer is inside.

    Args:
        model: keras.Model made by `build_text_classifier`.
        path: str or None. Export directory (see `keras_transfer.export`).
        verify_texts: sequence of str. Texts the reloaded SavedModel is compared with
            Keras on. Required: random strings would tell nothing.
        class_names: list of str or None. Returned by the signature.
        overwrite: bool. Replace an existing export. Defaults to False.
        **kwargs: Passed to `keras_transfer.export.export_saved_model`.

    Returns:
        `keras_transfer.export.ExportReport`.

    Raises:
        ValueError: no `verify_texts`, or not one string per example (one string
            alone is refused, not split into characters).
        ExportVerificationError: the SavedModel disagrees with Keras.
    """
    from keras_transfer.export import export_saved_model

    if verify_texts is None or not len(verify_texts):
        raise ValueError(
            "Expected verify_texts: a few strings to compare the exported SavedModel "
            f"with the Keras model on. Received: verify_texts={verify_texts!r}"
        )
    verify_texts = check_texts(verify_texts, "verify_texts")
    return export_saved_model(
        model,
        path,
        input_shape=(),
        input_dtype="string",
        # The export's reference path casts non-float arrays unless a preprocessor
        # handles them: this one only makes the strings a tf.string tensor.
        preprocessor=_string_tensor,
        verify_data=_as_bytes(verify_texts),
        class_names=class_names,
        overwrite=overwrite,
        **kwargs,
    )


def export_text_tflite(
    model: keras.Model,
    path: str | os.PathLike | None = None,
    *,
    verify_texts: Sequence[str] | None = None,
    include_tokenizer: bool = False,
    quantization: str | None = None,
    overwrite: bool = False,
    **kwargs: Any,
):
    """Exports a text classifier to a verified TFLite file on int32 token ids.

    Args:
        model: keras.Model made by `build_text_classifier`.
        path: str or None. Export directory (see `keras_transfer.export`).
        verify_texts: sequence of str. Tokenized with `tokenize_for_tflite` and used
            to compare the file with Keras. Required.
        include_tokenizer: bool. Try to put the tokenizer inside the file (raw
            strings in). Defaults to False. With the WordPiece tokenizer of KerasHub
            this raises `UnsupportedOpError`: TensorFlow Text ops are not TFLite ops.
        quantization: None, `"float16"` or `"dynamic"` (see `export_tflite`).
        overwrite: bool. Replace an existing export. Defaults to False.
        **kwargs: Passed to `keras_transfer.export.export_tflite`.

    Returns:
        `keras_transfer.export.ExportReport` of a file taking `(batch, length)` int32
        token ids (padding 0).

    Raises:
        ValueError: no `verify_texts`, or not one string per example (one string
            alone is refused, not split into characters).
        UnsupportedOpError: `include_tokenizer=True` and the tokenizer's ops do not
            convert (nothing is written).
    """
    from keras_transfer.export import export_tflite

    if verify_texts is None or not len(verify_texts):
        raise ValueError(
            "Expected verify_texts: a few strings to compare the TFLite file with the "
            f"Keras model on. Received: verify_texts={verify_texts!r}"
        )
    verify_texts = check_texts(verify_texts, "verify_texts")
    if include_tokenizer:
        return _tflite_with_tokenizer(model, path, verify_texts, overwrite)
    return export_tflite(
        token_ids_model(model),
        path,
        verify_data=tokenize_for_tflite(model, verify_texts),
        quantization=quantization,
        overwrite=overwrite,
        **kwargs,
    )


def _tflite_with_tokenizer(
    model: keras.Model, path: Any, verify_texts: Sequence[str], overwrite: bool
):
    """Converts the whole model (strings in) with TF Select; verified, else raises."""
    import re
    import tempfile
    from pathlib import Path

    from ai_edge_litert.interpreter import Interpreter

    from keras_transfer.export import UnsupportedOpError

    if path is None:
        raise ValueError("Expected a path for include_tokenizer=True. Received: None")
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it.")
    with tempfile.TemporaryDirectory() as saved_model_dir:
        model.export(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        try:
            content = converter.convert()
        except Exception as err:  # ConverterError is not exported publicly
            ops = sorted(
                {
                    op.strip()
                    for line in re.findall(r"Custom ops: ([^\n]+)", str(err))
                    for op in line.split(",")
                }
            )
            raise UnsupportedOpError(
                "The tokenizer of this text model does not convert to TFLite, even "
                f"with TF Select ops: {', '.join(ops) or 'see the cause'} are "
                "TensorFlow Text ops, neither TFLite builtins nor Flex ops. Nothing "
                "was written. Export with include_tokenizer=False (int32 token ids in) "
                "and tokenize in the app with the same vocabulary "
                "(see tokenize_for_tflite).",
                ops,
            ) from err
    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    (name,) = runner.get_input_details()
    got = list(runner(**{name: np.array(list(verify_texts), dtype=object)}).values())
    expected = model.predict(tf.constant(list(verify_texts)), verbose=0)
    np.testing.assert_allclose(got[0], expected, atol=1e-4)
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.tflite").write_bytes(content)
    return target / "model.tflite"
