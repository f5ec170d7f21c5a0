"""`image_files`: an image folder as a lazy array (listing, header checks, errors)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from keras_transfer.data import ImageFiles, from_directory, image_files


def _folder(root: Path, counts=(3, 2)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, n in enumerate(counts):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(n):
            img = (rng.integers(0, 50, (14, 10, 3)) + 90 * c).astype("uint8")
            Image.fromarray(img).save(root / f"c{c}" / f"{i}.png")
    return root


def test_labelled_folder_is_listed_not_decoded_and_matches_from_directory(tmp_path):
    root = _folder(tmp_path / "d")
    x, y, names = image_files(root, (8, 8), interpolation="nearest")
    assert isinstance(x, ImageFiles) and x.shape == (5, 8, 8, 3)
    assert y.tolist() == [0, 0, 0, 1, 1] and names == ["c0", "c1"]
    ds = from_directory(
        root, image_size=(8, 8), shuffle=False, interpolation="nearest", batch_size=8
    )
    images, labels = next(iter(ds))
    np.testing.assert_array_equal(np.asarray(x), images.numpy().astype("uint8"))
    assert labels.numpy().tolist() == y.tolist()
    only, y1, _ = image_files(root, (8, 8), class_names=["c1"], color_mode="grayscale")
    assert only.shape == (2, 8, 8, 1) and y1.tolist() == [0, 0]


def test_unlabelled_reads_every_image_at_any_depth(tmp_path):
    x = image_files(_folder(tmp_path / "d"), (6, 6), labels=None)
    assert isinstance(x, ImageFiles) and len(x) == 5
    assert np.asarray(x[1:3]).shape == (2, 6, 6, 3)


def test_bad_arguments_and_files_are_named(tmp_path, caplog):
    root = _folder(tmp_path / "d")
    with pytest.raises(ValueError, match="labels='all'"):
        image_files(root, (8, 8), labels="all")
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        image_files(root, (8, 8), color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation"):
        image_files(root, (8, 8), interpolation="fancy")
    with pytest.raises(ValueError, match="does not exist"):
        image_files(tmp_path / "missing", (8, 8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        image_files(tmp_path / "empty", (8, 8), labels=None)
    (root / "c1" / "notes.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"notes\.png.*skip_corrupt=True"):
        image_files(root, (8, 8))
    with caplog.at_level(logging.WARNING, logger="keras_transfer"):
        x, y, _ = image_files(root, (8, 8), skip_corrupt=True)
    assert len(x) == len(y) == 5 and "notes.png" in caplog.text
