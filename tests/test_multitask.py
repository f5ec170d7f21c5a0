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
