"""The text layers through the shared round-trip helper (tiny random BERT)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from helpers import run_serialization_test

from keras_transfer.text import TextEncoder, build_text_classifier
from keras_transfer.text.export import TokenIdsEncoder, token_ids_model


def test_text_encoder_and_token_ids_encoder_roundtrip(tiny_text_backbone, tmp_path):
    model = build_text_classifier(tiny_text_backbone, 3, sequence_length=16)
    texts = tf.constant(["The pasta was great.", "The battery stopped working."])
    encoder = model.get_layer("text_encoder")
    assert isinstance(encoder, TextEncoder)
    run_serialization_test(encoder, tmp_path / "text", inputs=texts, model=model)

    ids_model = token_ids_model(model)
    token_ids = encoder.preprocessor(texts)["token_ids"].numpy().astype("int32")
    layer = ids_model.get_layer("token_ids_encoder")
    assert isinstance(layer, TokenIdsEncoder)
    run_serialization_test(layer, tmp_path / "ids", inputs=token_ids, model=ids_model)
    np.testing.assert_allclose(
        ids_model.predict(token_ids, verbose=0),
        model.predict(texts, verbose=0),
        atol=1e-5,
    )
