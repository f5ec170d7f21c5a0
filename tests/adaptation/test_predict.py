"""`predict_eagerly`: the same outputs as `model.predict`, any input structure."""

import numpy as np
import pytest
import tensorflow as tf

from keras_transfer._backend import keras
from keras_transfer.adaptation.predict import predict_eagerly


def test_matches_predict_on_arrays_with_a_partial_last_batch():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    x = np.random.default_rng(0).normal(size=(11, 4)).astype("float32")
    got = predict_eagerly(model, x, batch_size=4)
    assert got.shape == (11, 3)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-6)


def test_dict_inputs_and_datasets():
    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    out = keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, out)
    x = {"a": np.ones((5, 2), "float32"), "b": np.arange(5.0)[:, None]}
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(predict_eagerly(model, x, batch_size=2), want, atol=1e-6)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2)
    np.testing.assert_allclose(predict_eagerly(model, ds), want, atol=1e-6)


def test_inference_mode_and_bad_batch_size():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.9)])
    x = np.ones((6, 4), "float32")
    np.testing.assert_array_equal(predict_eagerly(model, x), x)  # dropout is off
    with pytest.raises(ValueError, match="batch_size >= 1"):
        predict_eagerly(model, x, batch_size=0)


@pytest.mark.parametrize("distributed", [False, True])
def test_image_files_are_decoded_a_slice_at_a_time(tmp_path, monkeypatch, distributed):
    """Eagerly, each slice is decoded on its own; under a strategy with several
    replicas (`model.predict`), the files stream in order: never one array."""
    from keras_transfer.adaptation import predict as predict_module
    from keras_transfer.data import ImageFiles

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (7, 8, 8, 3)).astype("uint8")
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        keras.utils.save_img(paths[-1], image)
    files = ImageFiles(paths, (8, 8))
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    want = model.predict(np.asarray(files, "float32"), verbose=0)
    whole = ImageFiles.__array__

    def at_most_three(self, *args, **kwargs):
        assert len(self) <= 3, f"{len(self)} image files decoded into one array"
        return whole(self, *args, **kwargs)

    monkeypatch.setattr(ImageFiles, "__array__", at_most_three)
    monkeypatch.setattr(predict_module, "_distributed", lambda model: distributed)
    got = predict_eagerly(model, files, batch_size=3)
    np.testing.assert_allclose(got, want, atol=1e-5)
