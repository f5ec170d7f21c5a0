"""`read_dataset` and `SpilledArray`: a dataset read once, kept on disk when large."""

from __future__ import annotations

import gc
import tempfile

import numpy as np
import pytest

from keras_transfer._backend import tf
from keras_transfer.data import from_arrays, spill
from keras_transfer.data.lazy import JoinedArray, LazyArray
from keras_transfer.data.spill import SpilledArray, read_dataset


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Spilled folders go under the test's own folder, so they can be counted."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _spilled(tmp):
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("keras_transfer_"))


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4, 3)).astype("float32"), np.arange(n) % 3


@pytest.mark.parametrize("batched", [True, False])
def test_small_datasets_stay_arrays(temp_dir, batched):
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    got_x, got_y = read_dataset(ds.batch(8) if batched else ds, "source", labelled=True)
    assert isinstance(got_x, np.ndarray) and not _spilled(temp_dir)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


@pytest.mark.parametrize("batched", [True, False])
def test_large_datasets_spill_to_disk_and_read_back_equal(temp_dir, batched, caplog):
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    limit = x[:10].nbytes  # past 10 rows the reader writes to disk
    with caplog.at_level("INFO", logger="keras_transfer"):
        got_x, got_y = read_dataset(
            ds.batch(8) if batched else ds, "source", labelled=True, spill_bytes=limit
        )
    assert isinstance(got_x, SpilledArray) and isinstance(got_x, LazyArray)
    assert got_x.shape == x.shape and got_x.dtype == x.dtype and len(got_x) == 50
    assert got_x.nbytes == x.nbytes
    assert len(_spilled(temp_dir)) == 1 and "written to" in caplog.text
    np.testing.assert_array_equal(np.asarray(got_x), x)
    np.testing.assert_array_equal(got_y, y)
    # slices, index arrays and masks stay lazy; an int reads one row
    part = got_x[5:20:3]
    assert isinstance(part, SpilledArray)
    np.testing.assert_array_equal(np.asarray(part), x[5:20:3])
    index = np.array([49, 0, 7, 7])
    np.testing.assert_array_equal(np.asarray(got_x[index]), x[index])
    mask = y == 2
    np.testing.assert_array_equal(np.asarray(got_x[mask]), x[mask])
    np.testing.assert_array_equal(got_x[3], x[3])
    np.testing.assert_array_equal(got_x.astype("float64"), x.astype("float64"))
    # the folder goes with the last array over it
    del got_x, part
    gc.collect()
    assert not _spilled(temp_dir)


def test_concatenate_joins_spills_without_reading(temp_dir, monkeypatch):
    x1, _ = _data(30, seed=1)
    x2, _ = _data(20, seed=2)
    a, _ = read_dataset(tf.data.Dataset.from_tensor_slices(x1), "a", spill_bytes=0)
    b, _ = read_dataset(tf.data.Dataset.from_tensor_slices(x2), "b", spill_bytes=0)
    whole = SpilledArray.__array__
    monkeypatch.setattr(SpilledArray, "__array__", lambda *a, **k: 1 / 0)
    joined = LazyArray.join([a[10:], b[::2], a[:3]])
    monkeypatch.setattr(SpilledArray, "__array__", whole)
    assert isinstance(joined, SpilledArray)
    np.testing.assert_array_equal(
        np.asarray(joined), np.concatenate([x1[10:], x2[::2], x1[:3]])
    )
    # joined twice (parts of a join joined again) still reads the right rows
    again = SpilledArray.concatenate([joined[::-1], b[:1]])
    expected = np.concatenate(
        [np.concatenate([x1[10:], x2[::2], x1[:3]])[::-1], x2[:1]]
    )
    np.testing.assert_array_equal(np.asarray(again), expected)
    # lazy and in-memory parts: a JoinedArray, still not read
    monkeypatch.setattr(SpilledArray, "__array__", lambda *a, **k: 1 / 0)
    mixed = LazyArray.join([a[:2], x2[:1]])
    monkeypatch.setattr(SpilledArray, "__array__", whole)
    assert isinstance(mixed, JoinedArray) and mixed.shape == (3, 4, 3)
    np.testing.assert_array_equal(np.asarray(mixed), np.concatenate([x1[:2], x2[:1]]))
    # spilled rows of another dtype join as a JoinedArray too
    c, _ = read_dataset(
        tf.data.Dataset.from_tensor_slices(x2.astype("float64")), "c", spill_bytes=0
    )
    other = SpilledArray.concatenate([a[:1], c[:1]])
    assert isinstance(other, JoinedArray) and other.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(other), np.concatenate([x1[:1], x2[:1]]))
    # arrays alone are concatenated as arrays
    assert isinstance(LazyArray.join([x1[:1], x2[:1]]), np.ndarray)


def test_image_files_and_spilled_rows_join_lazily(temp_dir, monkeypatch):
    from PIL import Image

    from keras_transfer.data import ImageFiles

    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 255, (5, 6, 6, 3)).astype("uint8")
    paths = []
    for i, picture in enumerate(pictures):
        paths.append(str(temp_dir / f"{i}.png"))
        Image.fromarray(picture).save(paths[-1])
    files = ImageFiles(paths, (6, 6))
    rows = rng.integers(0, 255, (7, 6, 6, 3)).astype("uint8")
    spilled, _ = read_dataset(
        tf.data.Dataset.from_tensor_slices(rows), "t", spill_bytes=0
    )
    joined = LazyArray.join([files[:3], spilled[2:]])
    assert isinstance(joined, JoinedArray) and len(joined) == 8
    expected = np.concatenate([pictures[:3], rows[2:]])
    order = rng.permutation(8)
    picked = joined[order]  # a shuffle across the parts: still lazy
    assert isinstance(picked, JoinedArray)
    np.testing.assert_array_equal(np.asarray(picked), expected[order])
    np.testing.assert_array_equal(np.asarray(picked[2:5]), expected[order][2:5])
    streamed = list(from_arrays(picked, batch_size=3, shuffle=False))
    np.testing.assert_array_equal(np.concatenate(streamed), expected[order])
    with pytest.raises(ValueError, match="one row shape"):
        LazyArray.join([files, rows[:, :5]])


def test_dataset_streams_rows_in_order_or_shuffled_with_their_labels(temp_dir):
    x, y = _data(600)  # more than one read of `READ_ROWS`
    got, _ = read_dataset(tf.data.Dataset.from_tensor_slices(x), "t", spill_bytes=0)
    rows = np.stack(list(got.dataset(shuffle=False, seed=0).as_numpy_iterator()))
    np.testing.assert_array_equal(rows, x)
    pairs = got[::-1].dataset(y[::-1], shuffle=True, seed=3, dtype="float64")
    assert pairs.cardinality().numpy() == 600
    seen = list(pairs.as_numpy_iterator())
    xs = np.stack([s[0] for s in seen])
    ys = np.array([s[1] for s in seen])
    assert xs.dtype == np.float64
    order = [int(np.flatnonzero((x == row).all(axis=(1, 2)))[0]) for row in xs]
    assert sorted(order) == list(range(600)) and order != sorted(order)[::-1]
    np.testing.assert_array_equal(ys, y[order])  # each row keeps its label
    # from_arrays streams it too, in the array's own dtype
    batches = list(from_arrays(got, y, batch_size=64, shuffle=False))
    assert batches[0][0].dtype == tf.float32 and len(batches) == 10
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    # a dataset outliving its arrays says so instead of reading removed files
    ds = got.dataset(shuffle=False, seed=0)
    del got
    gc.collect()
    with pytest.raises(Exception, match="keep the array alive"):
        list(ds.as_numpy_iterator())


def test_a_failed_read_leaves_nothing_on_disk(temp_dir):
    def rows():
        yield np.zeros((4, 2), "float32")
        yield np.zeros((4, 2), "float32")
        raise RuntimeError("the source broke")

    ds = tf.data.Dataset.from_generator(
        rows, output_signature=tf.TensorSpec((None, 2), tf.float32)
    )
    with pytest.raises(Exception, match="the source broke"):
        read_dataset(ds, "target", spill_bytes=0)
    assert not _spilled(temp_dir)


def test_a_full_disk_is_named_and_leaves_nothing(temp_dir, monkeypatch):
    import builtins
    import errno

    real_open = builtins.open

    class _Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.f.close()

    def full_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return _Full(f) if str(path).endswith("rows.bin") else f

    monkeypatch.setattr(builtins, "open", full_open)
    x, _ = _data(20)
    with pytest.raises(OSError, match="No space left writing the target.*TMPDIR"):
        read_dataset(tf.data.Dataset.from_tensor_slices(x), "target", spill_bytes=0)
    assert not _spilled(temp_dir)


@pytest.mark.parametrize("spill_bytes", [0, None])  # on disk; in memory
def test_batches_of_another_shape_are_named(temp_dir, spill_bytes):
    def rows():
        yield np.zeros((4, 2), "float32")
        yield np.zeros((4, 3), "float32")

    ds = tf.data.Dataset.from_generator(
        rows, output_signature=tf.TensorSpec((None, None), tf.float32)
    )
    with pytest.raises(ValueError, match=r"one shape and dtype.*\(2,\).*\(3,\).*4 on"):
        read_dataset(ds, "target", spill_bytes=spill_bytes)
    assert not _spilled(temp_dir)


def test_check_sees_every_batch_with_its_first_row(temp_dir):
    x, _ = _data(20)
    seen = []
    read_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(8),
        "t",
        spill_bytes=0,
        check=lambda batch, first: seen.append((first, len(batch))),
    )
    assert seen == [(0, 8), (8, 8), (16, 4)]


def test_reads_longer_than_one_call_are_joined(temp_dir, monkeypatch):
    x, _ = _data(50)
    got, _ = read_dataset(tf.data.Dataset.from_tensor_slices(x), "t", spill_bytes=0)
    monkeypatch.setattr(spill, "READ_CHUNK", 100)  # bytes: several calls a row
    np.testing.assert_array_equal(np.asarray(got), x)
    np.testing.assert_array_equal(np.asarray(got[[3, 2, 40]]), x[[3, 2, 40]])


def test_the_default_limit_is_half_a_gibibyte():
    assert spill.SPILL_BYTES == 512 << 20
