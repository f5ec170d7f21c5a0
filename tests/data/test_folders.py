"""Image folders: one decoder (bit-exact with keras.utils.load_img), streaming reads,
stratified splits, corrupt files, and the CLI reader streaming a large folder."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_transfer._backend import keras
from keras_transfer.data import from_arrays, from_directory
from keras_transfer.data.folders import (
    ImageFiles,
    decode_files,
    list_image_files,
    stratified_split,
)

SIZE = 16


def _folder(
    root: Path, counts=(4, 6), ext: str = "png", seed: int = 0, channels: int = 3
) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, n in enumerate(counts):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(n):
            shape = (int(rng.integers(12, 40)), int(rng.integers(12, 40)), channels)
            img = (rng.integers(0, 50, shape) + 80 * c).astype("uint8")
            img = img[..., 0] if channels == 1 else img
            Image.fromarray(img).save(root / f"c{c}" / f"{i}.{ext}")
    return root


def _flattened(root: Path, flat: Path) -> Path:
    """The images of a class folder copied into one folder, without classes."""
    flat.mkdir()
    for i, image in enumerate(sorted(root.rglob("*.png"))):
        (flat / f"{i}.png").write_bytes(image.read_bytes())
    return flat


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize(
    "ext, channels",
    [("png", 3), ("jpg", 3), ("bmp", 3), ("gif", 3), ("png", 1), ("png", 4)],
)
def test_decoder_matches_keras_load_img(tmp_path, ext, channels):
    root = _folder(tmp_path, (3, 3), ext, channels=channels)
    paths, labels, names = list_image_files(root)
    assert names == ["c0", "c1"] and labels.tolist() == [0, 0, 0, 1, 1, 1]
    images, failed = decode_files(paths, (SIZE, SIZE))
    assert failed == []
    expected = np.stack(
        [np.asarray(keras.utils.load_img(p, target_size=(SIZE, SIZE))) for p in paths]
    )
    np.testing.assert_array_equal(images, expected)


def test_image_files_is_lazy_and_streams_like_the_array(tmp_path):
    paths, labels, _ = list_image_files(_folder(tmp_path))
    files = ImageFiles(paths, (SIZE, SIZE))
    eager = np.asarray(files)
    assert files.shape == eager.shape == (10, SIZE, SIZE, 3)
    assert isinstance(files[2:5], ImageFiles) and len(files[[0, 9]]) == 2
    np.testing.assert_array_equal(files[3], eager[3])
    np.testing.assert_array_equal(np.asarray(files[np.array([7, 1])]), eager[[7, 1]])
    joined = ImageFiles.concatenate([files[:4], files[4:]])
    assert isinstance(joined, ImageFiles) and len(joined) == 10
    streamed = from_arrays(files, labels, batch_size=4, shuffle=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in streamed])
    np.testing.assert_array_equal(np.concatenate(xs), eager)
    np.testing.assert_array_equal(np.concatenate(ys), labels)
    shuffled = from_arrays(files, labels, batch_size=4, seed=3)
    x, y = (
        np.concatenate(a) for a in zip(*[(x.numpy(), y.numpy()) for x, y in shuffled])
    )
    order = [int(np.flatnonzero((eager == img).all(axis=(1, 2, 3)))[0]) for img in x]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    np.testing.assert_array_equal(y, labels[order])  # labels follow their images


def test_stratified_split_keeps_class_shares():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    train, val = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val]).tolist() == [2, 4, 6]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(60))
    again = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], val)
    with pytest.raises(ValueError, match=r"validation_split in \[0, 1\)"):
        stratified_split(labels, 1.0, seed=0)


@pytest.mark.parametrize("cache", [True, False, "auto", "file"])
def test_from_directory_cache_modes_split_and_labels(tmp_path, cache):
    root = _folder(tmp_path / "d", (4, 8))
    if cache == "file":
        cache = str(tmp_path / "cache")
    train, val = from_directory(
        str(root),
        image_size=(SIZE, SIZE),
        batch_size=3,
        validation_split=0.25,
        subset="both",
        seed=1,
        cache=cache,
    )
    assert train.class_names == val.class_names == ["c0", "c1"]
    for _ in range(2):  # a second epoch reads the cache when there is one
        y_val = np.concatenate([y.numpy() for _, y in val])
        x_train = np.concatenate([x.numpy() for x, _ in train])
    assert np.bincount(y_val).tolist() == [1, 2]  # stratified: 3 of 12
    assert x_train.shape == (9, SIZE, SIZE, 3) and x_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() <= 255.0
    onehot = from_directory(
        str(root), image_size=(SIZE, SIZE), label_mode="categorical", shuffle=False
    )
    unbatched = from_directory(str(root), image_size=(SIZE, SIZE), batch_size=None)
    assert next(iter(unbatched))[0].shape == (SIZE, SIZE, 3)
    y = np.concatenate([y.numpy() for _, y in onehot])
    np.testing.assert_array_equal(y.argmax(-1), [0] * 4 + [1] * 8)


def test_from_directory_errors_and_keras_fallback(tmp_path):
    root = _folder(tmp_path / "d", (2, 2))
    with pytest.raises(ValueError, match="Expected subset to be 'training'"):
        from_directory(str(root), validation_split=0.5)
    with pytest.raises(ValueError, match="subset='training' needs validation_split"):
        from_directory(str(root), subset="training")
    with pytest.raises(ValueError, match="Received: label_mode='onehot'"):
        from_directory(str(root), label_mode="onehot")
    with pytest.raises(ValueError, match=r"no folder for \['zebra'\]"):
        from_directory(str(root), class_names=["c0", "zebra"])
    # An argument only Keras' reader knows: Keras' reader, same class names.
    ds = from_directory(str(root), image_size=(8, 8), crop_to_aspect_ratio=True)
    assert ds.class_names == ["c0", "c1"]
    assert sum(int(x.shape[0]) for x, _ in ds) == 4
    train, val = from_directory(
        str(root),
        image_size=(8, 8),
        crop_to_aspect_ratio=True,
        validation_split=0.5,
        subset="both",
        cache=str(tmp_path / "kc"),
    )
    for _ in range(2):  # the second pass reads each subset's own cache file
        assert sum(int(x.shape[0]) for x, _ in train) == 2
        assert sum(int(x.shape[0]) for x, _ in val) == 2
    assert {p.name.split(".")[0] for p in tmp_path.glob("kc-*")} == {
        "kc-training",
        "kc-validation",
    }


def test_from_directory_reads_a_flat_folder_of_unlabelled_images(tmp_path):
    root = _folder(tmp_path / "d", (3, 5))
    flat = _flattened(root, tmp_path / "flat")
    with pytest.raises(ValueError, match="has no class subfolders"):
        from_directory(str(flat))  # labels need class folders
    ds = from_directory(str(flat), image_size=(8, 8), label_mode=None, batch_size=4)
    batches = list(ds)
    assert all(b.shape[1:] == (8, 8, 3) for b in batches)  # images only
    assert sum(int(b.shape[0]) for b in batches) == 8 and ds.class_names == []
    train, val = from_directory(
        str(flat),
        image_size=(8, 8),
        label_mode=None,
        validation_split=0.25,
        subset="both",
    )
    assert sum(int(b.shape[0]) for b in train) == 6
    assert sum(int(b.shape[0]) for b in val) == 2
    # the same images as the labelled folder, read without its labels
    nested = from_directory(str(root), image_size=(8, 8), label_mode=None)
    assert sum(int(b.shape[0]) for b in nested) == 8


def test_from_directory_corrupt_files(tmp_path):
    root = _folder(tmp_path / "d", (3, 3))
    _truncate(root / "c1" / "0.png")
    ds = from_directory(str(root), image_size=(SIZE, SIZE), cache=False)
    with pytest.raises(Exception, match="(?i)png|invalid|corrupt|data"):
        for _ in ds:
            pass
    ds = from_directory(
        str(root), image_size=(SIZE, SIZE), skip_corrupt=True, shuffle=False
    )
    y = np.concatenate([y.numpy() for _, y in ds])
    assert y.tolist() == [0, 0, 0, 1, 1]


def test_from_directory_names_a_file_that_is_not_an_image_before_training(tmp_path):
    root = _folder(tmp_path / "d", (3, 3))
    (root / "c1" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"c1/broken\.jpg.*not a JPEG.*skip_corrupt"):
        from_directory(str(root), image_size=(SIZE, SIZE))
    ds = from_directory(str(root), image_size=(SIZE, SIZE), skip_corrupt=True)
    assert sum(int(b.shape[0]) for b, _ in ds) == 6


def test_cli_reader_streams_large_folders_with_the_same_split(tmp_path, monkeypatch):
    from keras_transfer.cli import _data
    from keras_transfer.config import DataConfig

    root = _folder(tmp_path / "d", (5, 7))
    cfg = DataConfig(source=str(root), image_size=SIZE, validation_split=0.25)
    eager = _data.load_labelled(cfg)
    assert isinstance(eager.x_train, np.ndarray)
    monkeypatch.setattr(_data, "STREAM_BYTES", 0)
    lazy = _data.load_labelled(cfg)
    assert isinstance(lazy.x_train, ImageFiles) and isinstance(lazy.x_val, ImageFiles)
    np.testing.assert_array_equal(np.asarray(lazy.x_train), eager.x_train)
    np.testing.assert_array_equal(np.asarray(lazy.x_val), eager.x_val)
    np.testing.assert_array_equal(lazy.y_val, eager.y_val)
    x, y, _ = _data.evaluation_arrays(cfg)
    assert isinstance(x, ImageFiles) and len(x) == len(y) == 12


def test_data_stream_forces_or_forbids_streaming(tmp_path, monkeypatch):
    from keras_transfer.cli import _data
    from keras_transfer.config import DataConfig

    root = _folder(tmp_path / "d", (5, 7))
    cfg = DataConfig(source=str(root), image_size=SIZE, validation_split=0.25)
    eager = _data.load_labelled(cfg)
    assert isinstance(eager.x_train, np.ndarray)  # small: read into memory
    forced = _data.load_labelled(dataclasses.replace(cfg, stream=True))
    assert isinstance(forced.x_train, ImageFiles)
    np.testing.assert_array_equal(np.asarray(forced.x_train), eager.x_train)
    flat = _flattened(root, tmp_path / "flat")
    unlabelled = DataConfig(source=str(flat), image_size=SIZE, stream=True)
    x, held = _data.load_unlabelled(unlabelled, "target.source")
    assert isinstance(x, ImageFiles) and isinstance(held, ImageFiles)
    monkeypatch.setattr(_data, "STREAM_BYTES", 0)  # every folder is "large"
    assert isinstance(_data.load_labelled(cfg).x_train, ImageFiles)
    kept = _data.load_labelled(dataclasses.replace(cfg, stream=False))
    assert isinstance(kept.x_train, np.ndarray)


def test_cli_reader_damaged_file_named_or_skipped(tmp_path, monkeypatch, caplog):
    from keras_transfer.cli import _data
    from keras_transfer.config import ConfigError, DataConfig

    root = _folder(tmp_path / "d", (3, 3))
    _truncate(root / "c1" / "2.png")  # a valid header, damaged data
    cfg = DataConfig(source=str(root), image_size=SIZE)
    with pytest.raises(ConfigError, match=r"c1/2\.png.*damaged.*skip_corrupt"):
        _data.load_labelled(cfg)
    skip = DataConfig(source=str(root), image_size=SIZE, skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="keras_transfer"):
        data = _data.load_labelled(skip)
    assert len(data.x_train) + len(data.x_val) == 5
    assert "skipped 1 unreadable files: c1/2.png" in caplog.text
    (root / "c0" / "bad.png").write_bytes(b"not an image")
    monkeypatch.setattr(_data, "STREAM_BYTES", 0)
    with pytest.raises(ConfigError, match=r"c0/bad\.png.*not a JPEG"):
        _data.load_labelled(cfg)  # streamed folders are checked before training
    data = _data.load_labelled(skip)
    assert isinstance(data.x_train, ImageFiles)
    assert len(data.x_train) + len(data.x_val) == 6  # header check drops bad.png
    streamed = from_arrays(data.x_train, data.y_train, batch_size=8)
    assert sum(int(x.shape[0]) for x, _ in streamed) <= len(data.x_train)
    with pytest.raises(ConfigError, match=r"c1/2\.png.*inputs"):
        _data.read_images(str(root / "c1"), SIZE)


@pytest.mark.large
def test_cli_train_evaluate_export_on_a_streamed_folder(tmp_path, monkeypatch):
    """`train`, `evaluate` and `export` (calibration from the run's data) with the
    folder streamed from disk."""
    from keras_transfer.cli import _data, main

    monkeypatch.setattr(_data, "STREAM_BYTES", 0)
    root = _folder(tmp_path / "d", (8, 8))
    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        ]
    )
    backbone.save(tmp_path / "bb.keras")
    cfg = {
        "name": "s",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"source": str(root), "image_size": SIZE, "batch_size": 4},
        "model": {"backbone": str(tmp_path / "bb.keras")},
        "training": {"epochs": 2, "fine_tune_epochs": 0},
    }
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "t.yaml"), "--quiet"]) == 0
    run = tmp_path / "runs" / "s"
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(v["support"] for v in metrics["evaluation"]["per_class"].values()) == 3
    assert len(metrics["history"]["loss"]) == 2
    model = str(run / "model.keras")
    out = tmp_path / "ev"
    args = ["evaluate", "--set", f"model_path={model}", "--set", f"output={out}"]
    assert main([*args, "--set", f"data.source={root}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(v["support"] for v in metrics["per_class"].values()) == 16
    export = {
        "model_path": model,
        "quantization": ["float32", "int8"],  # int8 calibrates on the run's data
        "output": str(tmp_path / "exp"),
    }
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(export))
    assert main(["export", str(tmp_path / "x.yaml")]) == 0
    summary = json.loads((tmp_path / "exp" / "summary.json").read_text())
    assert [r["quantization"] for r in summary] == ["float32", "int8"]
    assert summary[0]["agreement"] == 1.0
    assert summary[1]["calibration_samples"] == 13  # the run's training split


def test_domain_pairs_streams_image_files(tmp_path):
    from keras_transfer.data import domain_pairs

    src_paths, src_labels, _ = list_image_files(_folder(tmp_path / "s", (3, 3)))
    tgt_paths, _, _ = list_image_files(_folder(tmp_path / "t", (2, 2), seed=1))
    source = ImageFiles(src_paths, (SIZE, SIZE))
    target = ImageFiles(tgt_paths, (SIZE, SIZE))
    eager = np.asarray(source)
    pairs = list(domain_pairs((source, src_labels), target, batch_size=2, seed=0))
    assert len(pairs) == 3  # one pass over the larger domain
    xs = np.concatenate([x["source"].numpy() for x, _ in pairs])
    ys = np.concatenate([y.numpy() for _, y in pairs])
    assert xs.shape == (6, SIZE, SIZE, 3) and pairs[0][0]["target"].shape[0] == 2
    for image, label in zip(xs, ys):  # every label still belongs to its image
        (row,) = np.flatnonzero((eager == image).all(axis=(1, 2, 3)))
        assert src_labels[row] == label


def test_cli_predictions_on_a_streamed_folder_decode_batch_by_batch(
    tmp_path, monkeypatch
):
    from keras_transfer.cli._train import predict_classes

    paths, _, _ = list_image_files(_folder(tmp_path, (3, 4)))
    files = ImageFiles(paths, (SIZE, SIZE))
    eager = np.asarray(files)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    expected = predict_classes(model, eager, batch_size=3)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole folder was decoded into one array")

    monkeypatch.setattr(ImageFiles, "__array__", refuse)
    np.testing.assert_allclose(predict_classes(model, files, batch_size=3), expected)


def test_cli_unlabelled_folder_streams_and_names_damaged_files(tmp_path, monkeypatch):
    import keras_transfer.cli._data as cli_data
    from keras_transfer.config import ConfigError, DataConfig
    from keras_transfer.data.folders import ImageFiles

    root = _folder(tmp_path / "d", (3, 5))
    flat = _flattened(root, tmp_path / "flat")
    cfg = DataConfig(source=str(flat), image_size=8, validation_split=0.25)
    assert cli_data.is_unlabelled(str(flat)) and not cli_data.is_unlabelled(str(root))
    x, held = cli_data.load_unlabelled(cfg, "target.source")
    assert isinstance(x, np.ndarray) and (len(x), len(held)) == (6, 2)
    monkeypatch.setattr(cli_data, "STREAM_BYTES", 1)  # every folder streams
    x, held = cli_data.load_unlabelled(cfg, "target.source")
    assert isinstance(x, ImageFiles) and x.ndim == 4 and x.shape[1:] == (8, 8, 3)
    assert (len(x), len(held)) == (6, 2)
    (flat / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=r"bad\.png.*target\.source"):
        cli_data.load_unlabelled(cfg, "target.source")
    skip = DataConfig(source=str(flat), image_size=8, skip_corrupt=True)
    assert len(cli_data.load_unlabelled(skip, "target.source")[0]) == 6  # 8 - 2 held
