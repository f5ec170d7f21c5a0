"""Data helpers: arrays, image folders, TFDS (offline: clear errors, real prepared data)."""

import os

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.data import from_arrays, from_directory, from_tfds


def test_from_arrays_batches_and_preprocess():
    x = np.arange(10, dtype="float32").reshape(10, 1)
    ds = from_arrays(
        x, np.arange(10), batch_size=4, shuffle=False, preprocess=lambda t: t * 2
    )
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(batches[0][0].numpy()[:, 0], [0, 2, 4, 6])


def test_from_arrays_unlabelled_and_weights():
    x = np.zeros((6, 2), "float32")
    assert len(next(iter(from_arrays(x, batch_size=3))).shape) == 2
    element = next(iter(from_arrays(x, np.zeros(6), sample_weight=np.ones(6))))
    assert len(element) == 3


def test_from_arrays_errors():
    with pytest.raises(ValueError, match=r"Expected y to have as many rows as x \(4\)"):
        from_arrays(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        from_arrays(np.zeros((4, 2)), np.zeros(4), batch_size=0)
    with pytest.raises(ValueError, match="sample_weight needs y"):
        from_arrays(np.zeros((4, 2)), sample_weight=np.ones(4))


def test_from_directory(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        os.makedirs(tmp_path / label)
        for i in range(3):
            img = rng.integers(0, 255, (20, 20, 3), dtype="uint8")
            keras.utils.save_img(str(tmp_path / label / f"{i}.png"), img)
    ds = from_directory(str(tmp_path), image_size=(16, 16), batch_size=4, seed=1)
    assert ds.class_names == ["cat", "dog"]
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    assert np.concatenate(xs).shape == (6, 16, 16, 3)
    assert sorted(np.concatenate(ys).tolist()) == [0, 0, 0, 1, 1, 1]
    train, val = from_directory(
        str(tmp_path), image_size=(16, 16), validation_split=0.5, subset="both", seed=1
    )
    assert train.class_names == val.class_names == ["cat", "dog"]


def test_from_directory_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        from_directory(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="has no class subfolders"):
        from_directory(str(tmp_path))


def test_from_tfds_offline_is_clear(tmp_path):
    with pytest.raises(ValueError, match="is not prepared in .*download=True"):
        from_tfds("mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown TFDS dataset"):
        from_tfds("no_such_dataset_xyz", data_dir=str(tmp_path))


def test_from_tfds_reads_prepared_data(tmp_path):
    import tensorflow_datasets as tfds

    x = np.arange(12, dtype="float32").reshape(6, 2)
    y = np.arange(6) % 2
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name="kt_tiny",
        version="1.0.0",
        features=tfds.features.FeaturesDict(
            {
                "x": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                "label": tfds.features.ClassLabel(num_classes=2),
            }
        ),
        split_datasets={
            "train": tf.data.Dataset.from_tensor_slices({"x": x, "label": y})
        },
        config=None,
        data_dir=str(tmp_path),
        description="tiny",
        release_notes={},
        homepage="",
        citation="",
        file_format=None,
        disable_shuffling=True,
    )
    del builder
    ds = from_tfds(
        "kt_tiny",
        data_dir=str(tmp_path),
        batch_size=None,
        shuffle=False,
        as_supervised=False,
    )
    got = np.stack([e["x"].numpy() for e in ds])
    np.testing.assert_array_equal(got, x)
