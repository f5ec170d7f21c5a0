"""Tests of keras_transfer.multitask."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.multitask import build_multitask, parse_head_spec


def _backbone():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        ],
        name="tiny_backbone",
    )


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8, 8, 3)).astype("float32")
    y = {
        "digit": rng.integers(0, 4, n),
        "tags": rng.integers(0, 2, (n, 3)).astype("float32"),
        "size": x.mean(axis=(1, 2, 3)),
    }
    return x, y


def test_parse_head_spec():
    assert parse_head_spec("a", "classification:3")["units"] == 3
    assert parse_head_spec("b", "regression")["units"] == 1
    assert parse_head_spec("c", {"type": "multilabel", "units": 2})["loss"] == (
        "binary_crossentropy"
    )
    with pytest.raises(ValueError, match="units"):
        parse_head_spec("a", "classification")
    with pytest.raises(ValueError, match="type"):
        parse_head_spec("a", "ranking:3")
    with pytest.raises(ValueError, match="task names"):
        parse_head_spec("bad name", "regression")


def test_multitask_trains_all_heads_and_round_trips(tmp_path):
    heads = {"digit": "classification:4", "tags": "multilabel:3", "size": "regression"}
    model = build_multitask(
        _backbone(),
        heads,
        loss_weights={"size": 2.0},
        unfreeze_depth="all",
        learning_rate=1e-2,
    )
    x, y = _data()
    before = {t: model.get_layer(t).get_weights()[0].copy() for t in heads}
    conv_before = model.get_layer("tiny_backbone").get_weights()[0].copy()
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for task in heads:
        assert f"{task}_loss" in hist.history
        assert not np.allclose(before[task], model.get_layer(task).get_weights()[0])
    assert "digit_accuracy" in hist.history and "size_mae" in hist.history
    assert not np.allclose(
        conv_before, model.get_layer("tiny_backbone").get_weights()[0]
    )

    out = model.predict(x[:4], verbose=0)
    assert out["digit"].shape == (4, 4) and out["tags"].shape == (4, 3)
    assert out["size"].shape == (4, 1)
    path = tmp_path / "mt.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    again = reloaded.predict(x[:4], verbose=0)
    for task in heads:
        np.testing.assert_allclose(again[task], out[task], atol=1e-6)
    reloaded.evaluate(x, y, verbose=0)  # compiled losses survive the round trip
    model.export(tmp_path / "saved", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = loaded.serve(x[:4])
    assert set(served) == set(heads)
    np.testing.assert_allclose(served["digit"], out["digit"], atol=1e-5)


def test_frozen_backbone_and_bad_weights():
    model = build_multitask(_backbone(), {"a": "classification:2"})
    assert not model.get_layer("tiny_backbone").trainable_weights
    with pytest.raises(ValueError, match="unknown tasks"):
        build_multitask(_backbone(), {"a": "regression"}, loss_weights={"b": 1.0})
    with pytest.raises(ValueError, match="non-empty"):
        build_multitask(_backbone(), {})


def test_names_its_backbone_and_set_trainable_recompiles():
    from keras_transfer import set_trainable

    backbone = _backbone()
    model = build_multitask(backbone, {"a": "classification:2", "s": "regression"})
    assert model.backbone is backbone
    x, y = _data(8)
    model.fit(x, {"a": y["digit"] % 2, "s": y["size"]}, epochs=1, verbose=0)
    before = backbone.get_layer("conv").kernel.numpy().copy()
    set_trainable(model, "all")
    assert model.train_function is None  # recompiled from its compile config
    model.fit(x, {"a": y["digit"] % 2, "s": y["size"]}, epochs=1, verbose=0)
    assert not np.array_equal(before, backbone.get_layer("conv").kernel.numpy())


@pytest.mark.parametrize("module", ["distillation", "fewshot", "multitask", "augment"])
def test_module_docstring_example_runs(module):
    import importlib
    import re

    doc = importlib.import_module(f"keras_transfer.{module}").__doc__
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    exec(compile(code, f"<{module} docstring>", "exec"), {})


# ------------------------------------------- shared builder arguments (issue 13)
def test_strategy_builds_and_compiles_in_its_scope():
    from keras_transfer.distribute import maybe_distribute

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    with maybe_distribute(mirrored):  # a passed backbone is made in the scope too
        backbone = _backbone()
    model = build_multitask(
        backbone,
        {"a": "classification:2", "s": "regression"},
        unfreeze_depth="all",
        strategy=mirrored,
    )
    assert model.distribute_strategy is mirrored
    assert isinstance(
        model.get_layer("a").kernel.value, tf.distribute.DistributedValues
    )
    x, y = _data(8)
    history = model.fit(
        x, {"a": y["digit"] % 2, "s": y["size"]}, batch_size=4, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="strategy='nope'"):
        build_multitask(_backbone(), {"a": "regression"}, strategy="nope")


def test_backbone_learning_rate_and_the_shared_optimizer():
    from keras_transfer import set_trainable

    backbone = _backbone()
    model = build_multitask(
        backbone,
        {"a": "classification:2", "s": "regression"},
        unfreeze_depth="all",
        learning_rate=1e-2,
        backbone_learning_rate=1e-5,
        weight_decay=1e-4,
    )
    optimizers = model.optimizer.optimizers
    rates = sorted(float(o.learning_rate) for o in optimizers)
    assert rates == pytest.approx([1e-5, 1e-2])
    assert all(isinstance(o, keras.optimizers.AdamW) for o in optimizers)
    x, y = _data(16)
    labels = {"a": y["digit"] % 2, "s": y["size"]}
    conv = backbone.get_layer("conv").kernel
    conv_before = conv.numpy().copy()
    head_before = model.get_layer("a").kernel.numpy().copy()
    model.fit(x, labels, batch_size=8, epochs=1, verbose=0)  # 2 Adam steps
    assert 0 < np.abs(conv.numpy() - conv_before).max() < 1e-4
    assert np.abs(model.get_layer("a").kernel.numpy() - head_before).max() > 5e-3
    # set_trainable recompiles from the compile config: both rates survive.
    set_trainable(model, 0)
    set_trainable(model, "all")
    rates = sorted(float(o.learning_rate) for o in model.optimizer.optimizers)
    assert rates == pytest.approx([1e-5, 1e-2])
    model.fit(x, labels, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="backbone_learning_rate"):
        build_multitask(_backbone(), {"a": "regression"}, backbone_learning_rate=-1)


def test_backbone_learning_rate_model_reloads_with_its_optimizer(tmp_path):
    import keras_transfer

    model = build_multitask(
        _backbone(),
        {"a": "classification:2", "s": "regression"},
        unfreeze_depth="all",
        learning_rate=1e-2,
        backbone_learning_rate=1e-5,
    )
    x, y = _data(16)
    labels = {"a": y["digit"] % 2, "s": y["size"]}
    model.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras_transfer.load_model(tmp_path / "m.keras")
    rates = sorted(float(o.learning_rate) for o in reloaded.optimizer.optimizers)
    assert rates == pytest.approx([1e-5, 1e-2])
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    reloaded.fit(x, labels, batch_size=8, epochs=1, verbose=0)


def test_default_compile_is_compile_models_optimizer():
    model = build_multitask(_backbone(), {"a": "regression"}, learning_rate=3e-3)
    assert type(model.optimizer) is keras.optimizers.Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-3)
    decayed = build_multitask(_backbone(), {"a": "regression"}, weight_decay=1e-3)
    assert isinstance(decayed.optimizer, keras.optimizers.AdamW)
    with pytest.raises(ValueError, match="learning_rate=0"):
        build_multitask(_backbone(), {"a": "regression"}, learning_rate=0)


def test_hidden_units_and_the_deprecated_hidden_key():
    import warnings

    from keras_transfer.multitask import MultiTaskConfig

    spec = {"type": "classification", "units": 3, "hidden_units": 5}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = build_multitask(_backbone(), {"a": spec}, compile=False)
    assert new.get_layer("a_hidden").units == 5
    old_spec = {"type": "classification", "units": 3, "hidden": 5}
    with pytest.warns(
        DeprecationWarning, match="head spec 'a': hidden= .* use hidden_units="
    ) as record:
        old = build_multitask(_backbone(), {"a": old_spec}, compile=False)
    assert record[0].filename == __file__  # points at the caller's line
    assert old.get_layer("a_hidden").units == 5
    assert [w.shape for w in old.weights] == [w.shape for w in new.weights]
    with pytest.warns(DeprecationWarning, match="hidden_units="):
        assert parse_head_spec("a", old_spec)["hidden_units"] == 5
    assert "hidden" not in parse_head_spec("a", spec)
    with pytest.raises(ValueError, match="Received both hidden_units= and hidden="):
        parse_head_spec("a", {**spec, "hidden": 5})
    # A config file written before the rename: read silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        config = MultiTaskConfig(heads={"a": old_spec, "s": "regression"})
        assert config.heads["a"]["hidden_units"] == 5
        assert "hidden" not in config.heads["a"]
        build_multitask(_backbone(), config.heads, compile=False)
