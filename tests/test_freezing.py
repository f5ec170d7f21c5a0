"""Trainable policy: frozen / all / top-N, BatchNorm frozen, bit-identical frozen weights."""

import numpy as np
import pytest
from helpers import tiny_bn_backbone, weights_snapshot

from keras_transfer import build_classifier, set_trainable, trainable_summary
from keras_transfer._backend import keras
from keras_transfer.freezing import depth_units, find_backbone, trainable_units


def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (n, 16, 16, 3)).astype("float32"), np.arange(n) % 2


@pytest.mark.parametrize("depth", [0, 1, 2, "all"])
def test_fit_changes_only_trainable_weights(depth):
    model = build_classifier(
        tiny_bn_backbone(), 2, unfreeze_depth=depth, learning_rate=1e-2
    )
    backbone = find_backbone(model)
    units = trainable_units(backbone)
    assert [u.name for u in units] == ["conv1", "conv2", "conv3"]
    n_train = {0: 0, 1: 1, 2: 2, "all": 3}[depth]
    expected_trainable = (
        [u.name for u in units[len(units) - n_train :]] if n_train else []
    )
    before = {u.name: weights_snapshot(u.weights) for u in units}
    bn_before = {
        n: weights_snapshot(backbone.get_layer(n).weights) for n in ("bn1", "bn2")
    }
    head_before = weights_snapshot(model.get_layer("predictions").weights)
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for u in units:
        changed = any(
            not np.array_equal(a, w.numpy()) for a, w in zip(before[u.name], u.weights)
        )
        assert changed == (u.name in expected_trainable), (u.name, depth)
    # BatchNorm (gamma, beta and moving statistics) is untouched in every mode.
    for n, snap in bn_before.items():
        for a, w in zip(snap, backbone.get_layer(n).weights):
            np.testing.assert_array_equal(a, w.numpy())
    assert not np.array_equal(
        head_before[0], model.get_layer("predictions").kernel.numpy()
    )


def test_train_batchnorm_updates_moving_stats():
    model = build_classifier(
        tiny_bn_backbone(), 2, unfreeze_depth="all", train_batchnorm=True
    )
    bn = find_backbone(model).get_layer("bn1")
    before = weights_snapshot(bn.weights)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(before[2], bn.moving_mean.numpy())


def test_set_trainable_recompiles_compiled_model():
    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth=0)
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)  # traces a train function over the head only
    conv3 = find_backbone(model).get_layer("conv3")
    before = conv3.kernel.numpy().copy()
    set_trainable(model, 1)
    assert model.train_function is None  # recompiled: fit traces anew
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, conv3.kernel.numpy())


def test_set_trainable_on_backbone_recompiles_parent():
    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth=0)
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    backbone = find_backbone(model)
    before = backbone.get_layer("conv3").kernel.numpy().copy()
    set_trainable(backbone, 1)  # the backbone, not the model
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, backbone.get_layer("conv3").kernel.numpy())


def test_transformer_blocks_count_as_units():
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10,
        num_layers=3,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    set_trainable(backbone, 2)
    blocks = depth_units(backbone)
    assert len(blocks) == 3
    assert [bool(b.trainable_weights) for b in blocks] == [False, True, True]
    assert backbone.get_layer("pooled_dense").trainable_weights
    embeddings = backbone.get_layer("token_embedding")
    assert not embeddings.trainable_weights


@pytest.mark.parametrize("bad", [-1, "some", 1.5, None, True])
def test_bad_unfreeze_depth(bad):
    with pytest.raises(
        ValueError, match="Expected unfreeze_depth to be an int >= 0 or 'all'"
    ):
        set_trainable(tiny_bn_backbone(), bad)


def test_depth_larger_than_backbone():
    with pytest.raises(ValueError, match="exceeds the backbone's depth: it has 3"):
        set_trainable(tiny_bn_backbone(), 7)


def test_trainable_summary_counts():
    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth=1)
    lines = []
    summary = trainable_summary(model, print_fn=lines.append)
    conv3 = find_backbone(model).get_layer("conv3")
    head = model.get_layer("predictions")
    assert summary["trainable_params"] == conv3.count_params() + head.count_params()
    assert summary["total_params"] == model.count_params()
    assert any("conv3" in line and "yes" in line for line in lines)
    assert any("conv1" in line and "no" in line for line in lines)


def test_plain_sequential_backbone():
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(8)]
    )
    set_trainable(backbone, 1)
    assert [bool(layer.trainable_weights) for layer in backbone.layers] == [False, True]
    set_trainable(backbone, 0)
    assert backbone.trainable_weights == []
