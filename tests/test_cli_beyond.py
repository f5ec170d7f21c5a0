"""`keras-transfer` train with augmentation, `distill` and `fewshot` on tiny data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from keras_transfer.cli import main

SIZE = 16


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory) -> str:
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    path = tmp_path_factory.mktemp("bb") / "tiny.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> str:
    """Six classes of 12 coloured 16x16 images (class c has mean colour 40 c)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 12)
    x = rng.integers(0, 40, (len(y), SIZE, SIZE, 3)) + 40 * y[:, None, None, None]
    path = tmp_path_factory.mktemp("npz") / "tiny.npz"
    np.savez(path, x=x.astype("uint8"), y=y)
    return str(path)


def _common(tmp_path: Path, npz: str) -> list[str]:
    return [
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
        "--set",
        f"data.source={npz}",
        "--set",
        f"data.image_size={SIZE}",
        "--set",
        "data.batch_size=16",
    ]


# ------------------------------------------------------------------ train + augment
def test_augmentation_section_matches_augment_module():
    from keras_transfer.augment import AugmentationConfig
    from keras_transfer.config import AugmentationSection

    full = {f.name: f for f in dataclasses.fields(AugmentationConfig)}
    for f in dataclasses.fields(AugmentationSection):
        assert f.name in full, f.name
        assert f.default == full[f.name].default, f.name
        assert f.metadata["help"] == full[f.name].metadata["help"], f.name
        assert f.metadata.get("choices") == full[f.name].metadata.get("choices")


def test_train_with_augmentation_saves_model_without_it(
    tmp_path, tiny_backbone, tiny_npz
):
    from keras_transfer.augment import is_augmentation_layer
    from keras_transfer.cli._train import load_model

    code = main(
        [
            "train",
            "--name",
            "aug",
            *_common(tmp_path, tiny_npz),
            "--set",
            f"model.backbone={tiny_backbone}",
            "--set",
            "training.epochs=1",
            "--set",
            "augmentation.flip=horizontal",
            "--set",
            "augmentation.rotation=0.05",
            "--set",
            "augmentation.mixup_alpha=0.2",
            "--set",
            "augmentation.label_smoothing=0.1",
            "--set",
            "augmentation.weight_decay=1e-4",
        ]
    )
    assert code == 0
    run = tmp_path / "runs" / "aug"
    model = load_model(str(run / "model.keras"))
    assert not any(is_augmentation_layer(layer) for layer in model.layers)
    assert model.predict(np.zeros((2, SIZE, SIZE, 3)), verbose=0).shape == (2, 6)
    # the training model had them: its last checkpoint keeps the stack
    trained = load_model(str(run / "checkpoints" / "last.keras"))
    assert any(is_augmentation_layer(layer) for layer in trained.layers)
    assert type(trained.optimizer).__name__ == "AdamW"
    saved = json.loads((run / "metrics.json").read_text())
    assert "loss" in saved["history"]


@pytest.mark.parametrize(
    "override, field",
    [
        ("augmentation.flip=sideways", "augmentation.flip"),
        ("augmentation.zoom=1.5", "augmentation.zoom"),
        ("augmentation.label_smoothing=-0.1", "augmentation.label_smoothing"),
        ("augmentation.mixup=0.2", "augmentation.mixup"),
    ],
)
def test_train_invalid_augmentation_names_the_field(
    tmp_path, tiny_npz, capsys, override, field
):
    code = main(["train", *_common(tmp_path, tiny_npz), "--set", override])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid config" in err and field in err
    assert not (tmp_path / "runs").exists()
