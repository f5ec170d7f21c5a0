"""build_text_classifier on a tiny random BERT: policies, counts, saving, embeddings."""

import numpy as np
import pytest
from helpers import run_keras_roundtrip, weights_snapshot

from keras_transfer._backend import keras, tf
from keras_transfer.datasets.text import sentiment_reviews
from keras_transfer.text import (
    TextEncoder,
    build_scratch_text_classifier,
    build_text_classifier,
    count_params,
    embed,
    text_dataset,
    transformer_blocks,
    zero_shot_classify,
)

HEAD = 16 * 2 + 2  # Dense(2) on 16 features.


def _size(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def _fit(model, n=16):
    data = sentiment_reviews("restaurants", num_train=n, num_test=4)
    model.fit(text_dataset(data.x_train, data.y_train, batch_size=8), verbose=0)


def test_frozen_counts_and_bit_identical_backbone(tiny_text_backbone):
    model = build_text_classifier(tiny_text_backbone, 2, sequence_length=16)
    backbone = model.get_layer("text_encoder").backbone
    counts = count_params(model)
    assert counts["trainable"] == HEAD
    assert counts["total"] == backbone.count_params() + HEAD
    before = weights_snapshot(backbone.weights)
    head_before = weights_snapshot(model.get_layer("predictions").weights)
    _fit(model)
    for a, b in zip(before, weights_snapshot(backbone.weights)):
        np.testing.assert_array_equal(a, b)
    head_after = weights_snapshot(model.get_layer("predictions").weights)
    assert not np.array_equal(head_before[0], head_after[0])


def test_top_n_trains_only_top_blocks(tiny_text_backbone):
    model = build_text_classifier(
        tiny_text_backbone, 2, unfreeze_depth=1, sequence_length=16
    )
    encoder = model.get_layer("text_encoder")
    bottom, top = transformer_blocks(encoder.backbone)
    assert count_params(model)["trainable"] == HEAD + _size(top.weights)
    frozen = [w for w in encoder.backbone.weights if not w.path.startswith(top.name)]
    before_frozen = weights_snapshot(frozen)
    before_top = weights_snapshot(top.weights)
    _fit(model)
    for a, b in zip(before_frozen, weights_snapshot(frozen)):
        np.testing.assert_array_equal(a, b)
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(before_top, weights_snapshot(top.weights))
    ]
    assert any(changed)
    assert bottom.weights and not bottom.trainable


def test_all_counts(tiny_text_backbone):
    full = build_text_classifier(
        tiny_text_backbone, 2, unfreeze_depth="all", sequence_length=16
    )
    counts = count_params(full)
    pooler = full.get_layer("text_encoder").backbone.pooled_dense
    # Mean pooling does not use the BERT pooler: it stays frozen.
    assert counts["non_trainable"] == pooler.count_params() > 0
    assert counts["trainable"] == counts["total"] - pooler.count_params()


def test_lora_counts_frozen_kernels_and_round_trip(tiny_text_backbone, tmp_path):
    frozen_total = tiny_text_backbone.model.count_params()
    model = build_text_classifier(
        tiny_text_backbone, 2, lora_rank=2, sequence_length=16
    )
    counts = count_params(model)
    names = [w.path for w in model.trainable_weights]
    assert all(("lora" in n or "bias" in n or "predictions" in n) for n in names)
    lora = [w for w in model.trainable_weights if "lora" in w.path]
    # 2 blocks x (query, value) x (A, B).
    assert len(lora) == 8
    # LoRA weights are added on top of the frozen model; nothing frozen became trainable
    # except the query/value biases KerasHub leaves trainable.
    assert counts["total"] == frozen_total + _size(lora) + HEAD
    assert counts["trainable"] < 0.5 * counts["total"]
    kernels = [w for w in model.non_trainable_weights if "query/kernel" in w.path]
    before = weights_snapshot(kernels)
    _fit(model)
    for a, b in zip(before, weights_snapshot(kernels)):
        np.testing.assert_array_equal(a, b)
    # .keras stores the adapters merged into the kernels: same outputs after reload.
    texts = tf.constant(["The soup was cold.", "What a great phone."])
    run_keras_roundtrip(model, texts, tmp_path, atol=1e-5)


def test_keras_round_trip(tiny_text_backbone, tmp_path):
    model = build_text_classifier(
        tiny_text_backbone, 3, unfreeze_depth=1, sequence_length=16
    )
    texts = tf.constant(["The pasta was great.", "The battery stopped working."])
    probs = model.predict(texts, verbose=0)
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    reloaded = run_keras_roundtrip(model, texts, tmp_path, atol=1e-6)
    assert isinstance(reloaded.get_layer("text_encoder"), TextEncoder)


def test_bad_arguments(tiny_text_backbone):
    with pytest.raises(ValueError, match="MobileNetV3Small.*not a text backbone"):
        build_text_classifier("keras_applications:MobileNetV3Small", 2, weights=None)
    with pytest.raises(ValueError, match="sequence_length <= 32"):
        build_text_classifier(tiny_text_backbone, 2, sequence_length=64)
    with pytest.raises(ValueError, match="unfreeze_depth"):
        build_text_classifier(
            tiny_text_backbone, 2, unfreeze_depth=3, sequence_length=16
        )
    with pytest.raises(ValueError, match="unfreeze_depth"):
        build_text_classifier(
            tiny_text_backbone, 2, unfreeze_depth=-1, sequence_length=16
        )
    with pytest.raises(ValueError, match="unfreeze_depth=0"):
        build_text_classifier(
            tiny_text_backbone, 2, unfreeze_depth=1, lora_rank=2, sequence_length=16
        )
    with pytest.raises(ValueError, match="lora_rank"):
        build_text_classifier(tiny_text_backbone, 2, lora_rank=0, sequence_length=16)
    with pytest.raises(ValueError, match="num_classes"):
        build_text_classifier(tiny_text_backbone, 1, sequence_length=16)
    with pytest.raises(ValueError, match="pooling"):
        build_text_classifier(tiny_text_backbone, 2, pooling="max", sequence_length=16)
    with pytest.raises(ValueError, match="text backbone"):
        build_text_classifier(keras.Sequential([keras.layers.Dense(2)]), 2)


def test_embed_is_unit_norm_and_ignores_padding(tiny_text_backbone):
    encoder = TextEncoder(
        tiny_text_backbone.model, tiny_text_backbone.preprocessor, normalize=True
    )
    texts = ["The pasta was great.", "The battery stopped working."]
    vectors = embed(texts, encoder)
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    tiny_text_backbone.preprocessor.sequence_length = 24  # more padding
    np.testing.assert_allclose(embed(texts, encoder), vectors, atol=1e-5)
    with pytest.raises(ValueError, match="one string"):
        embed("a single string", encoder)


def test_zero_shot_structure(tiny_text_backbone):
    encoder = TextEncoder(
        tiny_text_backbone.model, tiny_text_backbone.preprocessor, normalize=True
    )
    result = zero_shot_classify(
        ["The pasta was great."] * 3, ["good", "bad"], "{}", encoder
    )
    assert result.scores.shape == (3, 2) and result.labels[0] in ("good", "bad")
    assert result.labels == [["good", "bad"][i] for i in result.indices]
    with pytest.raises(ValueError, match="template"):
        zero_shot_classify(["x"], ["good", "bad"], "no placeholder", encoder)
    with pytest.raises(ValueError, match="at least 2"):
        zero_shot_classify(["x"], ["good"], backbone=encoder)


def test_scratch_baseline_learns_training_words():
    data = sentiment_reviews("electronics", num_train=64, num_test=8)
    model = build_scratch_text_classifier(data.x_train, 2)
    model.fit(text_dataset(data.x_train, data.y_train), epochs=5, verbose=0)
    _, accuracy = model.evaluate(
        text_dataset(data.x_train, data.y_train, shuffle=False), verbose=0
    )
    assert accuracy > 0.8


def test_text_model_uses_the_shared_policy(tiny_text_backbone):
    # One policy: the text model names its backbone, so set_trainable (and
    # fine_tune) apply keras_transfer's policy to it and recompile the model.
    from keras_transfer import set_trainable

    model = build_text_classifier(tiny_text_backbone, 2, sequence_length=16)
    encoder = model.get_layer("text_encoder")
    assert model.backbone is encoder.backbone
    assert model.compile_recipe["learning_rate"] == 5e-3
    _fit(model)
    set_trainable(model, 1)
    assert model.train_function is None  # recompiled
    bottom, top = transformer_blocks(encoder.backbone)
    assert top.trainable_weights and not bottom.trainable_weights
    assert model.get_layer("predictions").trainable_weights
    # Mean pooling ignores the BERT pooler (no gradient): it stays frozen.
    assert not encoder.backbone.pooled_dense.trainable_weights
    from keras_transfer import trainable_summary

    rows = {r[0]: r[2] for r in trainable_summary(model, print_fn=None)["layers"]}
    backbone = encoder.backbone.name
    assert rows[f"{backbone}/{top.name}"] and not rows[f"{backbone}/{bottom.name}"]
    before = weights_snapshot(top.weights)
    _fit(model)
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, weights_snapshot(top.weights))
    )


def test_set_text_trainable_is_a_deprecated_alias(tiny_text_backbone):
    from keras_transfer.text import set_text_trainable

    pooled = build_text_classifier(
        tiny_text_backbone, 2, sequence_length=16, pooling="pooled", compile=False
    )
    encoder = pooled.get_layer("text_encoder")
    with pytest.warns(DeprecationWarning, match="set_trainable"):
        set_text_trainable(encoder, 1)
    bottom, top = transformer_blocks(encoder.backbone)
    # The shared rule: what lies above the lowest unfrozen block trains, so the
    # pooler a "pooled" encoder feeds to the head trains with the top block.
    assert encoder.backbone.pooled_dense.trainable_weights
    assert top.trainable_weights and not bottom.trainable_weights
    encoder.pooling = "avg"  # now the pooler's output is unused: it stays frozen
    with pytest.warns(DeprecationWarning):
        set_text_trainable(encoder, "all")
    assert not encoder.backbone.pooled_dense.trainable_weights
    assert bottom.trainable_weights
    with pytest.raises(ValueError, match=r"int in \[0, 2\].*unfreeze_depth=3"):
        with pytest.warns(DeprecationWarning):
            set_text_trainable(encoder, 3)


def test_save_model_keeps_the_top_block_trainable_and_the_optimizer(
    tiny_text_backbone, tmp_path, caplog
):
    import warnings

    import keras_transfer as kt

    model = build_text_classifier(
        tiny_text_backbone, 2, unfreeze_depth=1, sequence_length=16
    )
    _fit(model)
    path = kt.save_model(model, tmp_path / "text.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level("WARNING", logger="keras_transfer"):
            reloaded = kt.load_model(path)
    assert not [w for w in caught if "Skipping variable" in str(w.message)]
    assert "did not match" not in caplog.text  # the record fits the rebuilt tree
    assert count_params(reloaded)["trainable"] == count_params(model)["trainable"]
    assert count_params(reloaded)["trainable"] < count_params(reloaded)["total"]
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = tf.constant(["good food", "bad"])
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
