"""Cached features with a KerasHub backbone loaded from a local preset directory."""

import logging

import numpy as np
import pytest

from keras_transfer import build_classifier, fine_tune, load_backbone
from keras_transfer._backend import keras
from keras_transfer.features import split_model


def _preset(tmp_path):
    import keras_hub

    from keras_transfer.pretrain import make_vgg_backbone

    keras.utils.set_random_seed(0)
    preset = str(tmp_path / "vgg_preset")
    make_vgg_backbone((4, 8)).save_to_preset(preset)
    keras_hub.layers.ImageConverter(scale=1.0 / 255.0).save_to_preset(preset)
    return f"keras_hub:{preset}"


@pytest.mark.filterwarnings("ignore:final accuracy")  # random labels
def test_keras_hub_preset_head_phase_cached_equals_uncached(tmp_path, caplog):
    spec = _preset(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (24, 16, 16, 3)).astype("float32")
    y = np.arange(24) % 3
    results = []
    for mode in (False, "auto"):
        keras.utils.set_random_seed(0)
        model = build_classifier(load_backbone(spec), 3, input_shape=(16, 16, 3))
        keras.utils.set_random_seed(1)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="keras_transfer"):
            history = fine_tune(
                model,
                (x, y),
                head_epochs=2,
                fine_tune_epochs=0,
                cache_features=mode,
                verbose=0,
            )
        results.append((model, history, caplog.text))
    (plain, h_plain, log_plain), (cached, h_cached, log_cached) = results
    assert "cached features" not in log_plain
    assert "head phase on cached features: 24 examples, 8 dims" in log_cached
    # The preset's ImageConverter is cached with the backbone, not left in the head.
    extractor, head = split_model(cached)

    # (by class: Keras numbers the name, "image_converter_1", after another test)
    def converters(model):
        return [x for x in model.layers if "ImageConverter" in type(x).__name__]

    assert len(converters(extractor)) == 1 and not converters(head)
    assert [layer.name for layer in head.layers][1:] == ["head_dropout", "predictions"]
    for a, b in zip(
        plain.get_layer("predictions").get_weights(),
        cached.get_layer("predictions").get_weights(),
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(h_plain.history["loss"], h_cached.history["loss"], 1e-5)
    np.testing.assert_allclose(
        plain.predict(x, verbose=0), cached.predict(x, verbose=0), atol=1e-6
    )
