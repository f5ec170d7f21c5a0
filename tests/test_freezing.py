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


def test_set_trainable_on_bare_backbone_warns_then_recompile_trains():
    # No hidden parent registry: a bare backbone cannot know the model around it,
    # so set_trainable says what to do and recompile(model) makes fit see it.
    from keras_transfer.compiling import recompile

    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth=0)
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    backbone = model.backbone
    conv3 = backbone.get_layer("conv3")
    before = conv3.kernel.numpy().copy()
    with pytest.warns(UserWarning, match=r"recompile\(model\) before fit"):
        set_trainable(backbone, 1)  # the backbone, not the model
    assert model.train_function is not None  # not recompiled behind the user's back
    recompile(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, conv3.kernel.numpy())


def test_fresh_bare_backbone_does_not_warn(recwarn):
    set_trainable(tiny_bn_backbone(), 1)
    assert not [w for w in recwarn if "recompile" in str(w.message)]


def test_builders_name_the_backbone_explicitly():
    backbone = tiny_bn_backbone()
    model = build_classifier(backbone, 2, unfreeze_depth=1)
    assert model.backbone is backbone and find_backbone(model) is backbone
    assert model.compile_recipe["learning_rate"] == 1e-3
    assert model.compile_recipe["task"] == "classification"


def test_explicit_backbone_wins_over_the_heuristic():
    # Two nested models: the guess picks the bigger one; model.backbone says which.
    small = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="s")], name="small"
    )
    big = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(64, name="b")], name="big"
    )
    inputs = keras.Input((4,))
    model = keras.Model(inputs, big(small(inputs)))
    assert find_backbone(model) is big
    model.backbone = small
    assert find_backbone(model) is small
    set_trainable(model, 0, recompile=False)
    assert not small.trainable_weights and big.trainable_weights


def test_save_load_set_trainable_fit_round_trip(tmp_path):
    # A .keras file keeps neither attribute: the loaded model falls back to the
    # nested-model guess and to its saved compile config, and still fine-tunes.
    import keras_transfer as kt

    model = build_classifier(
        tiny_bn_backbone(), 2, unfreeze_depth=0, learning_rate=1e-2
    )
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kt.load_model(path)
    assert not hasattr(loaded, "compile_recipe")
    backbone = find_backbone(loaded)
    assert backbone.name == "tiny_backbone"
    assert [u.trainable for u in trainable_units(backbone)] == [False] * 3
    loaded.fit(x, y, epochs=1, verbose=0)
    set_trainable(loaded, 1)
    assert loaded.train_function is None  # recompiled from its compile config
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-2)
    conv2, conv3 = backbone.get_layer("conv2"), backbone.get_layer("conv3")
    before = [conv2.kernel.numpy().copy(), conv3.kernel.numpy().copy()]
    loaded.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(before[0], conv2.kernel.numpy())
    assert not np.array_equal(before[1], conv3.kernel.numpy())


def test_recompile_backbone_learning_rate_without_recipe(tmp_path):
    # Was silently ignored for a model without a recipe (e.g. a loaded one).
    import keras_transfer as kt
    from keras_transfer.compiling import recompile

    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth="all")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kt.load_model(path)
    recompile(loaded, learning_rate=1e-3, backbone_learning_rate=1e-5)
    rates = sorted(float(o.learning_rate) for o in loaded.optimizer.optimizers)
    assert rates == pytest.approx([1e-5, 1e-3])
    loaded.fit(*_data(), epochs=1, verbose=0)


def test_count_params_one_home():
    from keras_transfer import freezing, text

    assert text.count_params is freezing.count_params
    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth=1)
    counts = freezing.count_params(model)
    head = model.get_layer("predictions").count_params()
    conv3 = model.backbone.get_layer("conv3").count_params()
    assert counts["trainable"] == head + conv3
    assert counts["total"] == model.count_params()
    with pytest.warns(DeprecationWarning, match="pass the model"):
        assert freezing.count_params(model.trainable_weights) == head + conv3


def test_register_parent_is_deprecated():
    from keras_transfer.freezing import register_parent

    backbone = tiny_bn_backbone()
    with pytest.warns(DeprecationWarning, match="model.backbone"):
        register_parent(backbone, build_classifier(backbone, 2))


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
    with pytest.raises(
        ValueError, match=r"int in \[0, 3\] or 'all'.*Received: unfreeze_depth=7"
    ):
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


def _batchnorm_trainable(model):
    backbone = find_backbone(model) or model
    return [backbone.get_layer(name).trainable for name in ("bn1", "bn2")]


@pytest.mark.parametrize(
    "pretrained, train_batchnorm, expected",
    [
        (True, "auto", [False, False]),  # the keras.io rule for trained statistics
        (False, "auto", [True, True]),  # nothing to protect: they train
        (False, False, [False, False]),
        (True, True, [True, True]),
    ],
)
def test_train_batchnorm_auto_trains_only_untrained_statistics(
    pretrained, train_batchnorm, expected, capsys
):
    backbone = tiny_bn_backbone(pretrained=pretrained)
    model = build_classifier(
        backbone, 2, unfreeze_depth="all", train_batchnorm=train_batchnorm
    )
    assert _batchnorm_trainable(model) == expected
    printed = capsys.readouterr().out
    said = "2 BatchNormalization layer(s) whose statistics have never been trained"
    assert (said in printed) == (train_batchnorm == "auto" and not pretrained)
    if expected[0]:
        bn = backbone.get_layer("bn1")
        before = bn.moving_mean.numpy().copy()
        model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
        assert not np.array_equal(before, bn.moving_mean.numpy())


def test_auto_keeps_training_the_layers_it_chose_in_later_phases():
    backbone = tiny_bn_backbone(pretrained=False)
    model = build_classifier(backbone, 2, unfreeze_depth=1)  # conv3 only: no BN
    assert _batchnorm_trainable(model) == [False, False]
    set_trainable(model, 2)  # conv2 and bn2 join
    assert _batchnorm_trainable(model) == [False, True]
    model.fit(*_data(), epochs=1, batch_size=8, verbose=0)  # bn2's statistics move
    set_trainable(model, "all")  # bn2 keeps training; bn1 is still untrained
    assert _batchnorm_trainable(model) == [True, True]


@pytest.mark.parametrize("bad", ["yes", None, 1])
def test_bad_train_batchnorm_is_refused(bad):
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        set_trainable(tiny_bn_backbone(), "all", train_batchnorm=bad)
