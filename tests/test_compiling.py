"""compile_model options: jit_compile (XLA) and mixed precision, kept by recompile."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer import build_classifier
from keras_transfer._backend import keras
from keras_transfer.backbones import find_backbone
from keras_transfer.compiling import compile_model, recompile
from keras_transfer.freezing import set_trainable
from keras_transfer.precision import float32_model, set_precision

SIZE = 16


def _model(**compile_kwargs):
    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        ],
        name="tiny",
    )
    model = build_classifier(
        backbone,
        3,
        unfreeze_depth="all",
        input_shape=(SIZE, SIZE, 3),
        dropout=0.0,
        compile=False,
    )
    return compile_model(model, **compile_kwargs)


def _data(n: int = 48):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = rng.uniform(0, 60, (n, SIZE, SIZE, 3)) + 80 * y[:, None, None, None]
    return x.astype("float32"), y


def test_jit_compile_is_set_and_kept_by_recompile():
    model = _model(jit_compile=True)
    assert model.jit_compile is True
    assert model.compile_recipe["jit_compile"] is True
    set_trainable(model, 0)  # recompiles from the recipe
    assert model.jit_compile is True
    recompile(model, jit_compile=False)
    assert model.jit_compile is False and model.compile_recipe["jit_compile"] is False
    from keras_transfer._backend import tf

    if not tf.config.list_physical_devices("GPU"):
        assert _model().jit_compile is False  # "auto": no XLA on a CPU-only machine
    with pytest.raises(ValueError, match=r"Received: jit_compile='yes'"):
        _model(jit_compile="yes")


def test_jit_compile_trains_like_the_plain_step():
    x, y = _data(32)
    plain, xla = _model(jit_compile=False), _model(jit_compile=True)
    xla.set_weights(plain.get_weights())
    for model in (plain, xla):
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        xla.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-4
    )


def test_mixed_bfloat16_trains_saves_and_exports_float32(tmp_path):
    x, y = _data()
    model = _model(mixed_precision="mixed_bfloat16")
    backbone = find_backbone(model)
    assert {layer.compute_dtype for layer in backbone.layers} == {"bfloat16"}
    assert model.layers[-1].compute_dtype == "float32"  # the head
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all(w.dtype == np.float32 for w in model.get_weights())
    probs = model.predict(x, verbose=0)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    set_trainable(model, 0)  # recompiles: the policy stays
    assert model.compile_recipe["mixed_precision"] == "mixed_bfloat16"

    from keras_transfer import load_model
    from keras_transfer._backend import tf

    model.save(tmp_path / "m.keras")
    reloaded = load_model(tmp_path / "m.keras")
    assert find_backbone(reloaded).layers[-1].compute_dtype == "bfloat16"
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), probs, atol=1e-6)
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))  # kept: it owns the variables
    served = loaded.serve(tf.constant(x))
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy(), probs, atol=1e-6)


def test_mixed_bfloat16_exports_to_tflite_float32(tmp_path):
    from keras_transfer.export import export_tflite

    x, y = _data(24)
    model = _model(mixed_precision="mixed_bfloat16")
    model.fit(x, y, epochs=1, verbose=0)
    report = export_tflite(model, tmp_path / "m", verify_data=(x, y))
    assert report.top1_agreement >= 0.95

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "m" / "model.tflite"))
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert find_backbone(model).layers[-1].compute_dtype == "bfloat16"  # untouched
    copy = float32_model(model)
    assert {layer.compute_dtype for layer in find_backbone(copy).layers} == {"float32"}
    np.testing.assert_allclose(
        copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-2
    )


def test_mixed_float16_scales_the_loss_and_errors():
    model = _model(mixed_precision="mixed_float16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert find_backbone(model).layers[-1].compute_dtype == "float16"
    with pytest.raises(ValueError, match=r"Received: mixed_precision='bf16'"):
        _model(mixed_precision="bf16")
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="nested backbone"):
        set_precision(plain, "mixed_bfloat16")


@pytest.mark.large  # XLA compiles two train steps: ~12 s on 2 cores
def test_fine_tune_keeps_jit_compile_and_precision_across_phases():
    from keras_transfer import fine_tune

    x, y = _data(32)
    model = _model(jit_compile=True, mixed_precision="mixed_bfloat16")
    history = fine_tune(
        model,
        (x, y),
        head_epochs=1,
        fine_tune_epochs=1,
        cache_features=False,
        verbose=0,
    )
    assert len(history.history["loss"]) == 2
    assert model.jit_compile is True  # recompiled for phase 2 from the recipe
    assert find_backbone(model).layers[-1].compute_dtype == "bfloat16"
    assert model.predict(x, verbose=0).dtype == np.float32


def test_fine_tune_jit_compile_overrides_the_models_setting():
    from keras_transfer import fine_tune

    x, y = _data(16)
    model = _model(jit_compile=False)
    with pytest.raises(ValueError, match=r"Received: jit_compile='xla'"):
        fine_tune(model, (x, y), jit_compile="xla", verbose=0)
    assert model.jit_compile is False  # refused before any phase
    one_phase = {"head_epochs": 1, "fine_tune_epochs": 0, "cache_features": False}
    fine_tune(model, (x, y), jit_compile=True, verbose=0, **one_phase)
    assert model.jit_compile is True and model.compile_recipe["jit_compile"] is True
    # None (the default) keeps what the model has now through its recompiles
    fine_tune(model, (x, y), verbose=0, **one_phase)
    assert model.jit_compile is True


def test_mixed_precision_warns_when_the_backbone_cannot_save_it(tmp_path, recwarn):
    import keras_hub

    from keras_transfer import load_model
    from keras_transfer.precision import config_keeps_policy

    vgg = keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1],
        stackwise_num_filters=[4],
        image_shape=(SIZE, SIZE, 3),
    )
    assert not config_keeps_policy(vgg)  # VGGBackbone.get_config: arguments only
    with pytest.warns(
        UserWarning, match="VGGBackbone.get_config.*reloads it in float32"
    ):
        model = build_classifier(
            vgg, 2, input_shape=(SIZE, SIZE, 3), mixed_precision="mixed_bfloat16"
        )
    assert find_backbone(model).layers[-1].compute_dtype == "bfloat16"
    model.save(tmp_path / "m.keras")
    # what the warning says: the reloaded copy computes in float32
    assert find_backbone(load_model(tmp_path / "m.keras")).layers[-1].compute_dtype == (
        "float32"
    )
    recwarn.clear()
    _model(mixed_precision="mixed_bfloat16")  # a Sequential backbone keeps it
    assert not [w for w in recwarn if "dtype policy" in str(w.message)]
