"""DANN on raw strings with a tiny random BERT encoder."""

import numpy as np
from helpers import weights_snapshot

from keras_transfer._backend import tf
from keras_transfer.datasets.text import sentiment_domains
from keras_transfer.text.adaptation import build_text_dann, text_domain_pairs


def test_text_dann_fits_and_predicts_strings(tiny_text_backbone):
    source, target = sentiment_domains(num_train=32, num_test=8)
    dann = build_text_dann(tiny_text_backbone, 2, sequence_length=16, adapter_units=8)
    backbone = dann.encoder.get_layer("text_encoder").backbone
    before = weights_snapshot(backbone.weights)
    adapter_before = weights_snapshot(dann.encoder.get_layer("adapter").weights)
    pairs = text_domain_pairs(
        source.x_train, source.y_train, target.x_train, batch_size=16
    )
    history = dann.fit(pairs, epochs=1, verbose=0)
    assert {"source_loss", "domain_loss", "domain_accuracy"} <= set(history.history)
    assert np.isfinite(history.history["loss"][-1])
    for a, b in zip(before, weights_snapshot(backbone.weights)):
        np.testing.assert_array_equal(a, b)  # frozen backbone: the adapter adapts
    adapter_after = weights_snapshot(dann.encoder.get_layer("adapter").weights)
    assert not np.array_equal(adapter_before[0], adapter_after[0])
    probs = dann.inference_model().predict(tf.constant(list(target.x_test)), verbose=0)
    assert probs.shape == (8, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
