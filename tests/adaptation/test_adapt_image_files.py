"""`adapt` on image folders read lazily (`image_files`): nothing decoded whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.data import ImageFiles, image_files

SIZE = 12
PER_CLASS = 100  # 300 images a domain: more than any batch adapt decodes at once


def _domain(root: Path, shift: int, labelled: bool, seed: int) -> Path:
    """Three classes told apart by their colour channel; the target is brighter."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(3):
        folder = root / f"c{c}" if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            img = rng.integers(0, 60, (SIZE, SIZE, 3)) + shift
            img[..., c] += 120
            Image.fromarray(img.clip(0, 255).astype("uint8")).save(
                folder / f"{c}_{i}.png"
            )
    return root


def _encoder() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


@pytest.mark.large
def test_adapt_auto_streams_image_files_batch_by_batch(tmp_path, monkeypatch):
    xs, ys, names = image_files(_domain(tmp_path / "s", 0, True, 0), (SIZE, SIZE))
    xt = image_files(_domain(tmp_path / "t", 60, False, 1), (SIZE, SIZE), labels=None)
    assert isinstance(xs, ImageFiles) and len(xs) == len(xt) == 3 * PER_CLASS
    decoded = []
    whole = ImageFiles.__array__

    def at_most_a_batch(self, dtype=None, copy=None):
        decoded.append(len(self))
        if len(self) > 256:  # the largest batch adapt predicts on
            raise AssertionError(f"{len(self)} image files decoded into one array")
        return whole(self, dtype, copy)

    monkeypatch.setattr(ImageFiles, "__array__", at_most_a_batch)
    result = kt.adapt(
        _encoder(),
        (xs, ys),
        xt,
        num_classes=len(names),
        candidates=("source_only", "mcc"),  # auto: scores, reverse fits, target BN
        epochs=3,
        verbose=0,
    )
    monkeypatch.undo()
    assert decoded and max(decoded) <= 256
    selection = result.selection
    assert {"ensv", "rv"} <= set(selection["candidates"]["mcc"]["scores"])
    assert result.source_accuracy > 0.9  # the colour tells the class
    # the returned model predicts on the decoded images like any array
    target = np.asarray(xt[:8])
    assert result.model.predict(target, verbose=0).shape == (8, 3)


@pytest.mark.large
def test_adapt_auto_streams_datasets_spilled_to_disk(tmp_path, monkeypatch):
    import tempfile

    from keras_transfer._backend import tf
    from keras_transfer.data import spill
    from keras_transfer.data.spill import SpilledArray

    rng = np.random.default_rng(0)
    ys = np.arange(3 * PER_CLASS) % 3

    def images(shift):
        x = rng.integers(0, 60, (len(ys), SIZE, SIZE, 3)) + shift
        x[np.arange(len(ys)), :, :, ys] += 120
        return x.clip(0, 255).astype("uint8")

    source = tf.data.Dataset.from_tensor_slices((images(0), ys)).batch(50)
    target = tf.data.Dataset.from_tensor_slices(images(60)).batch(50)
    monkeypatch.setattr(spill, "SPILL_BYTES", 100 * SIZE * SIZE * 3)  # 100 images
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    read = []
    whole = SpilledArray.__array__

    def bounded(self, dtype=None, copy=None):
        read.append(len(self))
        if len(self) > 512:  # a predict batch, or the jitter's value-range sample
            raise AssertionError(f"{len(self)} spilled rows read into one array")
        return whole(self, dtype, copy)

    monkeypatch.setattr(SpilledArray, "__array__", bounded)
    result = kt.adapt(
        _encoder(),
        source,
        target,
        num_classes=3,
        candidates=("source_only", "mcc"),  # auto: scores, reverse fits, target BN
        epochs=3,
        verbose=0,
    )
    monkeypatch.undo()
    assert read and max(read) <= 512
    assert {"ensv", "rv"} <= set(result.selection["candidates"]["mcc"]["scores"])
    assert result.source_accuracy > 0.9  # the colour tells the class
    assert not list(tmp_path.glob("keras_transfer_*"))  # removed when adapt ended
