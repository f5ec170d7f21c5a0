import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.layers import GradientReversal


@pytest.mark.parametrize("lam", [0.0, 0.37, 1.0, 2.5])
def test_gradient_is_minus_lambda_times_upstream(lam):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 5)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(4, 5)).astype("float32"))
    layer = GradientReversal(lambda_=lam)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    np.testing.assert_allclose(y.numpy(), x.numpy())
    np.testing.assert_allclose(
        tape.gradient(loss, x).numpy(), -lam * upstream.numpy(), atol=1e-6
    )


def test_lambda_change_applies_inside_traced_function():
    layer = GradientReversal(lambda_=1.0)
    x = tf.ones((2, 3))

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, x)

    np.testing.assert_allclose(grad(x).numpy(), -1.0)
    layer.lambda_ = 0.25
    np.testing.assert_allclose(grad(x).numpy(), -0.25)
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 1


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "x"])
def test_negative_or_invalid_lambda_is_rejected(bad):
    with pytest.raises(ValueError, match="lambda_"):
        GradientReversal(lambda_=bad)
    layer = GradientReversal()
    with pytest.raises(ValueError, match="lambda_"):
        layer.lambda_ = bad


def _model():
    inputs = keras.Input((3,))
    x = GradientReversal(lambda_=0.3, name="grl")(inputs)
    outputs = keras.layers.Dense(2)(x)
    return keras.Model(inputs, outputs)


def test_config_round_trip():
    layer = GradientReversal(lambda_=0.4, name="g")
    clone = GradientReversal.from_config(layer.get_config())
    assert clone.lambda_ == pytest.approx(0.4)
    assert clone.name == "g"


def test_keras_save_load_and_export(tmp_path):
    model = _model()
    model.get_layer("grl").lambda_ = 0.7
    x = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert loaded.get_layer("grl").lambda_ == pytest.approx(0.7)
    model.export(str(tmp_path / "exported"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(
        reloaded.serve(x).numpy(), model.predict(x, verbose=0), atol=1e-6
    )
