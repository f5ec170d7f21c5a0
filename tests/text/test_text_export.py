"""Text export: SavedModel on raw strings; TFLite on token ids, or a clear error."""

import numpy as np
import pytest
from conftest import make_tiny_text_backbone

from keras_transfer._backend import tf
from keras_transfer.export import UnsupportedOpError, load_tflite
from keras_transfer.text import build_text_classifier
from keras_transfer.text.export import (
    export_text_saved_model,
    export_text_tflite,
    tokenize_for_tflite,
)

TEXTS = [
    "The pasta was great.",
    "The battery stopped working.",
    "What a lovely dessert, it was delicious.",
    "The screen was not good.",
]


@pytest.fixture(scope="module")
def text_model():
    # One model for the module: exporting does not change it, and building and
    # tracing the tokenizer is the slow part.
    return build_text_classifier(
        make_tiny_text_backbone(), 2, sequence_length=16, unfreeze_depth=1
    )


def test_saved_model_takes_raw_strings(text_model, tmp_path):
    report = export_text_saved_model(
        text_model,
        tmp_path / "sm",
        verify_texts=TEXTS,
        class_names=["negative", "positive"],
    )
    served = tf.saved_model.load(report.path).signatures["serving_default"]
    out = served(inputs=tf.constant(TEXTS))
    expected = text_model.predict(tf.constant(TEXTS), verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert out["class_names"].shape == (4,)


def test_tflite_on_token_ids_matches_keras(text_model, tmp_path):
    report = export_text_tflite(text_model, tmp_path / "lite", verify_texts=TEXTS)
    predictor = load_tflite(report.path)
    ids = tokenize_for_tflite(text_model, TEXTS)
    assert ids.dtype == np.int32 and ids.shape == (4, 16)
    expected = text_model.predict(tf.constant(TEXTS), verbose=0)
    np.testing.assert_allclose(predictor.predict(ids), expected, atol=1e-4)


def test_tflite_with_tokenizer_raises_and_writes_nothing(text_model, tmp_path):
    target = tmp_path / "with_tokenizer"
    with pytest.raises(UnsupportedOpError, match="include_tokenizer=False"):
        export_text_tflite(
            text_model, target, verify_texts=TEXTS, include_tokenizer=True
        )
    assert not target.exists()


def test_verify_texts_required(text_model, tmp_path):
    with pytest.raises(ValueError, match="verify_texts"):
        export_text_saved_model(text_model, tmp_path / "x")
    with pytest.raises(ValueError, match="verify_texts"):
        export_text_tflite(text_model, tmp_path / "y")
