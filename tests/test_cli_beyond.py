"""`keras-transfer` train with augmentation, `distill` and `fewshot` on tiny data."""

from __future__ import annotations

import json
import warnings
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


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, tiny_npz) -> str:
    """`tiny_npz`'s images as a class folder of PNGs (the same pixels)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    with np.load(tiny_npz) as npz:
        x, y = npz["x"], npz["y"]
    for i, (image, label) in enumerate(zip(x, y)):
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(root / f"c{label}" / f"{i}.png")
    return str(root)


def _stream_folders(monkeypatch, at_most: int = 0) -> None:
    """Every folder streams (`ImageFiles`), and decoding more than ``at_most``
    of its images into one array fails the test."""
    from keras_transfer.cli import _data
    from keras_transfer.data import ImageFiles

    whole = ImageFiles.__array__

    def bounded(self, *args, **kwargs):
        if len(self) > at_most:
            raise AssertionError(f"{len(self)} image files decoded into one array")
        return whole(self, *args, **kwargs)

    monkeypatch.setattr(_data, "STREAM_BYTES", 0)
    monkeypatch.setattr(ImageFiles, "__array__", bounded)


def _common(tmp_path: Path, npz: str, quiet: bool = True) -> list[str]:
    return [
        "--runs-dir",
        str(tmp_path / "runs"),
        *(["--quiet"] if quiet else []),
        "--set",
        f"data.source={npz}",
        "--set",
        f"data.image_size={SIZE}",
        "--set",
        "data.batch_size=16",
    ]


# ------------------------------------------------------------------ train + augment
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


def test_default_student_learns_the_built_in_digits(tmp_path, capsys):
    """`distill` with every default on the built-in digits: the student learns.

    (The default student before stop 29 stayed at chance here: 0.10.)
    """
    from keras_transfer._backend import keras
    from keras_transfer.cli._data import load_labelled
    from keras_transfer.cli._distill import default_student
    from keras_transfer.config import DataConfig

    data = load_labelled(DataConfig(source="digits"))
    keras.utils.set_random_seed(0)
    teacher = default_student(data.x_train.shape[1:], 10)  # any trained classifier
    teacher.compile("adam", "sparse_categorical_crossentropy")
    teacher.fit(data.x_train, data.y_train, epochs=15, batch_size=32, verbose=0)
    teacher.save(tmp_path / "teacher.keras")
    args = ["distill", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    args += ["--set", f"distillation.teacher={tmp_path / 'teacher.keras'}"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "runs" / "distill" / "metrics.json").read_text())
    assert metrics["teacher_accuracy"] > 0.85, metrics
    assert metrics["student_accuracy"] > 0.75, metrics  # chance is 0.10


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


# --------------------------------------------------------------------------- distill
@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_backbone, tiny_npz) -> str:
    runs = tmp_path_factory.mktemp("teacher")
    code = main(
        [
            "train",
            "--name",
            "teacher",
            *_common(runs, tiny_npz),
            "--set",
            f"model.backbone={tiny_backbone}",
            "--set",
            "training.epochs=2",
        ]
    )
    assert code == 0
    return str(runs / "runs" / "teacher" / "model.keras")


@pytest.mark.parametrize("student", ["", "backbone"])
def test_distill_writes_student_metrics_and_report(
    tmp_path, teacher, tiny_backbone, tiny_npz, capsys, student
):
    from keras_transfer.cli._train import load_model

    spec = tiny_backbone if student == "backbone" else ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(
            [
                "distill",
                "--name",
                "small",
                *_common(tmp_path, tiny_npz),
                "--set",
                f"distillation.teacher={teacher}",
                "--set",
                f"distillation.student={spec}",
                "--set",
                "distillation.epochs=2",
                "--set",
                "distillation.temperature=2.0",
            ]
        )
    assert code == 0
    # the training data is shuffled by its dataset: no Keras "shuffle ignored" note
    assert not [w for w in caught if "shuffle" in str(w.message)]
    assert "student accuracy" in capsys.readouterr().out
    run = tmp_path / "runs" / "small"
    model = load_model(str(run / "model.keras"))
    probs = model.predict(np.zeros((3, SIZE, SIZE, 3)), verbose=0)
    assert probs.shape == (3, 6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("teacher_accuracy", "student_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert len(metrics["history"]["distillation_loss"]) == 2
    assert metrics["student_params"] == model.count_params()
    assert (run / "report" / "report.html").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_distill_streams_a_folder_too_large_for_memory(
    tmp_path, teacher, image_folder, monkeypatch
):
    """A class folder over `STREAM_BYTES`: the student trains on it and both
    accuracies are read from it without decoding it into one array."""
    _stream_folders(monkeypatch)
    args = ["distill", *_common(tmp_path, image_folder)]
    args += [
        "--set",
        f"distillation.teacher={teacher}",
        "--set",
        "distillation.epochs=1",
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "runs" / "distill" / "metrics.json").read_text())
    assert 0.0 <= metrics["student_accuracy"] <= 1.0
    assert metrics["teacher_accuracy"] > 1 / 6  # the teacher read the folder right


@pytest.mark.parametrize(
    "override, field",
    [
        ("distillation.teacher=missing.keras", "distillation.teacher"),
        ("distillation.alpha=1.5", "distillation.alpha"),
        ("distillation.temperature=0", "distillation.temperature"),
        ("distillation.student=missing_student.keras", "distillation.student="),
    ],
)
def test_distill_invalid_config_names_the_field(
    tmp_path, teacher, tiny_npz, capsys, override, field
):
    args = ["distill", *_common(tmp_path, tiny_npz)]
    args += ["--set", f"distillation.teacher={teacher}", "--set", override]
    assert main(args) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_distill_on_data_of_other_classes_names_the_teacher(tmp_path, teacher, capsys):
    path = tmp_path / "three.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 255, (18, SIZE, SIZE, 3)), y=np.arange(18) % 3)
    args = ["distill", *_common(tmp_path, str(path))]
    assert main([*args, "--set", f"distillation.teacher={teacher}"]) == 2
    err = capsys.readouterr().err
    assert "the teacher (distillation.teacher) has 6 classes" in err
    assert "has 3 classes" in err and "model.num_classes" not in err


# --------------------------------------------------------------------------- fewshot
@pytest.mark.parametrize("stream", [False, True])
def test_fewshot_prints_and_writes_accuracy_with_ci(
    tmp_path, tiny_backbone, tiny_npz, image_folder, capsys, monkeypatch, stream
):
    if stream:  # a folder over STREAM_BYTES: each episode decodes its 15 images
        _stream_folders(monkeypatch, at_most=3 * (2 + 3))
    code = main(
        [
            "fewshot",
            "--name",
            "fs",
            *_common(tmp_path, image_folder if stream else tiny_npz, quiet=False),
            "--set",
            f"backbone={tiny_backbone}",
            "--set",
            "fewshot.n_way=3",
            "--set",
            "fewshot.k_shot=2",
            "--set",
            "fewshot.n_query=3",
            "--set",
            "fewshot.eval_episodes=20",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "3-way 2-shot accuracy" in out and "95% CI" in out
    metrics = json.loads((tmp_path / "runs" / "fs" / "metrics.json").read_text())
    assert metrics["episodes"] == 20 and metrics["examples"] == 72
    assert metrics["chance"] == pytest.approx(1 / 3)
    # classes differ by mean colour: pooled features separate them well
    assert metrics["accuracy"] > 0.6, metrics
    assert 0.0 <= metrics["ci95"] < 0.5
    assert (tmp_path / "runs" / "fs" / "report" / "report.html").exists()


@pytest.mark.parametrize(
    "override, text",
    [
        ("fewshot.n_way=7", "fewshot.n_way"),
        ("fewshot.k_shot=0", "fewshot.k_shot"),
        ("fewshot.k_shot=10", "k_shot + n_query"),
    ],
)
def test_fewshot_invalid_config(
    tmp_path, tiny_backbone, tiny_npz, capsys, override, text
):
    args = ["fewshot", *_common(tmp_path, tiny_npz, quiet=False)]
    args += ["--set", f"backbone={tiny_backbone}", "--set", override]
    assert main(args) == 2
    assert text in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_fewshot_missing_backbone_names_its_own_field(tmp_path, tiny_npz, capsys):
    args = ["fewshot", *_common(tmp_path, tiny_npz, quiet=False)]
    args += ["--set", "backbone=missing_encoder.keras"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "backbone='missing_encoder.keras'" in err and "model.backbone" not in err


def test_help_lists_new_commands_and_templates(capsys):
    from keras_transfer.config import template

    for kind in ("distill", "fewshot"):
        assert f"keras-transfer {kind}" in template(kind)
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "distill" in out and "fewshot" in out and "distillation.teacher" in out
