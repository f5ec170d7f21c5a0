"""Labels and inputs of a `.npz` data source (keras_transfer/cli/_npz.py).

Ids, one-hot rows and class-name strings read as the same int ids; NaN inputs,
soft rows, fractions and unknown names are refused by name before anything trains.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer.cli._data import inspect_source, load_labelled, load_unlabelled
from keras_transfer.config import ConfigError, DataConfig

NAMES = np.array(["cat", "dog", "eel"])


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (30, 8, 8, 3)).astype("uint8"), np.arange(30) % 3


@pytest.mark.parametrize(
    "labels, names",
    [
        (lambda y: y, ["0", "1", "2"]),
        (lambda y: y[:, None].astype("float32"), ["0", "1", "2"]),
        (lambda y: np.eye(3)[y], ["0", "1", "2"]),
        (lambda y: np.eye(4)[y], ["0", "1", "2", "3"]),  # the width names the classes
        (lambda y: NAMES[y], ["cat", "dog", "eel"]),
    ],
)
def test_ids_one_hot_and_strings_read_as_the_same_ids(tmp_path, data, labels, names):
    x, y = data
    source = _npz(tmp_path / "d.npz", x=x, y=labels(y))
    assert inspect_source(source) == names
    read = load_labelled(DataConfig(source=source, image_size=8, validation_split=0.2))
    assert read.class_names == names
    got = np.concatenate([read.y_train, read.y_val])
    assert sorted(got.tolist()) == sorted(y.tolist())
    assert read.y_train.dtype == np.int32 and read.y_train.ndim == 1


def test_string_labels_follow_class_names_and_split_files_share_them(tmp_path, data):
    x, y = data
    order = np.array(["eel", "cat", "dog"])  # not sorted: class_names decides
    source = _npz(
        tmp_path / "d.npz", x_train=x, y_train=NAMES[y], x_test=x[:6],
        y_test=NAMES[y[:6]], class_names=order,
    )  # fmt: skip
    read = load_labelled(DataConfig(source=source, image_size=8))
    assert read.class_names == ["eel", "cat", "dog"]
    assert read.y_train.tolist() == [[1, 2, 0][v] for v in y]
    assert read.y_val.tolist() == [[1, 2, 0][v] for v in y[:6]]


@pytest.mark.parametrize(
    "arrays, match",
    [
        (lambda x, y: {"x": x, "y": np.eye(3)[y] * 0.8 + 0.05}, "not one-hot"),
        (lambda x, y: {"x": x, "y": y + 0.5}, "not whole numbers"),
        (lambda x, y: {"x": x, "y": y - 1}, "negative class ids"),
        (lambda x, y: {"x": x, "y": y[:, None, None] * np.ones((1, 2, 2))}, "shape"),
        (
            lambda x, y: {"x": x, "y": NAMES[y], "class_names": NAMES[:2]},
            r"\['eel'\] that are not in its class_names",
        ),
        (
            lambda x, y: {"x": x, "y": y, "class_names": NAMES[:2]},
            "class id 2, but there are 2 class_names",
        ),
        (
            lambda x, y: {"x_train": x, "y_train": NAMES[y], "y_test": y},
            "mixes string and numeric",
        ),
        (lambda x, y: {"x_train": x, "y_train": y}, "has x_train but not"),
    ],
)
def test_labels_in_a_form_not_accepted_are_refused_by_name(
    tmp_path, data, arrays, match
):
    x, y = data
    source = _npz(tmp_path / "d.npz", **arrays(x, y))
    with pytest.raises(ConfigError, match=match):
        load_labelled(DataConfig(source=source, image_size=8))


def test_nan_inputs_are_refused_labelled_or_not(tmp_path, data):
    x, y = data
    bad = x.astype("float32")
    bad[4, 0, 0, 0] = np.nan
    bad[9] = np.inf
    source = _npz(tmp_path / "d.npz", x=bad, y=y)
    with pytest.raises(ConfigError, match=r"'x' has NaN or infinite .* \[4, 9\]"):
        load_labelled(DataConfig(source=source, image_size=8))
    target = _npz(tmp_path / "t.npz", x=bad)
    with pytest.raises(ConfigError, match=r"NaN or infinite values in 2 example"):
        load_unlabelled(DataConfig(source=target, image_size=8), "target.source")


def test_cli_train_on_string_labels_names_its_classes(tmp_path, data):
    import json

    import yaml
    from _cluster import SIZE, tiny_backbone

    from keras_transfer.cli import main

    x, y = data
    x = np.resize(x, (30, SIZE, SIZE, 3))
    source = _npz(tmp_path / "d.npz", x=x, y=NAMES[y])
    cfg = {
        "name": "r",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"source": source, "image_size": SIZE, "batch_size": 8},
        "model": {"backbone": tiny_backbone(tmp_path / "tiny.keras")},
        "training": {"epochs": 1, "fine_tune_epochs": 0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "c.yaml"), "--quiet"]) == 0
    classes = json.loads((tmp_path / "runs" / "r" / "classes.json").read_text())
    assert classes == ["cat", "dog", "eel"]
