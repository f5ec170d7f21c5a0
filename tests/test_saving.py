"""keras_transfer.load_model: registry completeness, clear errors, fresh-process loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras_transfer
from keras_transfer._backend import keras
from keras_transfer.saving import REGISTERING_MODULES, check_model_file

PACKAGE_DIR = Path(keras_transfer.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_registering_modules_is_complete():
    registering = {
        _module_name(p)
        for p in PACKAGE_DIR.rglob("*.py")
        if re.search(r"register_keras_serializable\(", p.read_text(encoding="utf-8"))
        and p.name != "saving.py"
    }
    assert registering, "the walk found no registering module"
    missing = sorted(registering - set(REGISTERING_MODULES))
    assert not missing, (
        f"add these to keras_transfer.saving.REGISTERING_MODULES: {missing}"
    )
    stale = sorted(set(REGISTERING_MODULES) - registering)
    assert not stale, f"these register nothing (remove them): {stale}"


def test_every_registered_class_has_a_stand_in_until_its_module_loads():
    from keras_transfer._lazy_registry import SERIALIZABLE
    from keras_transfer.saving import register_all

    register_all()
    registered = {
        name: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith("keras_transfer>")
    }
    assert sorted(registered) == sorted(SERIALIZABLE)
    for name, cls in registered.items():  # the real classes replaced the stand-ins
        assert not getattr(cls, "_keras_transfer_stand_in", False), name
        assert cls.__module__ == SERIALIZABLE[name], name
    assert set(SERIALIZABLE.values()) == set(REGISTERING_MODULES)


def test_plain_keras_load_model_reads_a_keras_transfer_layer_in_a_fresh_process(
    tmp_path,
):
    # ApplicationPreprocessing lives in a module `import keras_transfer` does not load
    model = keras_transfer.build_classifier(
        "keras_applications:MobileNetV3Small", 3, weights=None, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    child = (
        "import sys, numpy as np, keras, keras_transfer\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))\n"
    )
    paths = [str(tmp_path / f) for f in ("m.keras", "x.npy", "y.npy")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", child, *paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(paths[2]), model.predict(x, verbose=0), atol=1e-5
    )


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file at"):
        check_model_file(tmp_path / "nope.keras")


def test_corrupt_keras_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"is not a valid \.keras file \(not a zip"):
        keras_transfer.load_model(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other.txt", "x")
    with pytest.raises(ValueError, match="no config.json"):
        keras_transfer.load_model(path)


@pytest.mark.parametrize(
    "marker, expected",
    [
        ("saved_model.pb", "SavedModel export folder"),
        ("model.tflite", "TFLite export folder"),
        ("model.keras", r"run directory\). Pass the model file inside it"),
        ("notes.txt", "is a folder. Expected a .keras model file"),
    ],
)
def test_folder_instead_of_file(tmp_path, marker, expected):
    (tmp_path / marker).write_bytes(b"")
    with pytest.raises(IsADirectoryError, match=expected):
        keras_transfer.load_model(tmp_path)


def _plain_sequential_backbone():
    import keras

    # Built on its own: its variable paths lose the "tiny_backbone/" prefix after a
    # reload ("conv3/kernel"), which broke the path-keyed optimizer assignment.
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="conv3"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="tiny_backbone",
    )


@pytest.mark.parametrize("kind", ["bn_backbone", "plain_sequential"])
def test_backbone_learning_rate_roundtrip_with_optimizer(tmp_path, kind):
    """The discriminative optimizer reloads with its rates, assignment and state."""
    from helpers import tiny_bn_backbone

    backbone = (
        tiny_bn_backbone() if kind == "bn_backbone" else _plain_sequential_backbone()
    )
    model = keras_transfer.build_classifier(
        backbone,
        2,
        unfreeze_depth="all",
        learning_rate=1e-2,
        backbone_learning_rate=1e-6,
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    y = np.arange(8) % 2
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras_transfer.load_model(tmp_path / "m.keras")
    rates = sorted(float(o.learning_rate) for o in reloaded.optimizer.optimizers)
    assert rates == pytest.approx([1e-6, 1e-2])
    saved = [v.numpy() for v in model.optimizer.variables]
    loaded = [v.numpy() for v in reloaded.optimizer.variables]
    assert len(saved) == len(loaded) > 2  # Adam moments of both sub-optimizers
    for a, b in zip(saved, loaded):
        np.testing.assert_array_equal(a, b)
    # The reloaded optimizer gives the backbone the small rate.
    conv = reloaded.get_layer("tiny_backbone").get_layer("conv3")
    head = reloaded.get_layer("predictions")
    cb, hb = conv.kernel.numpy().copy(), head.kernel.numpy().copy()
    reloaded.fit(x, y, epochs=1, verbose=0)
    conv_step = np.abs(conv.kernel.numpy() - cb).max()
    head_step = np.abs(head.kernel.numpy() - hb).max()
    assert 0 < conv_step < head_step / 100


# ------------------------------------------------------------- fresh-process loads
_CHILD = r"""
import json, sys
import numpy as np
import keras_transfer as kt

manifest = json.load(open(sys.argv[1]))
out = {}
for name, item in manifest["models"].items():
    model = kt.load_model(item["path"])
    x = np.load(item["x"])
    pred = model.predict(x, verbose=0)
    if isinstance(pred, dict):
        for key, value in pred.items():
            out[f"{name}/{key}"] = np.asarray(value)
    else:
        out[name] = np.asarray(pred)
    out[f"{name}/trainable"] = np.array(len(model.trainable_variables))
    if item.get("optimizer"):
        for i, v in enumerate(model.optimizer.variables):
            out[f"{name}/opt/{i}"] = v.numpy()
    if item.get("export"):
        import tensorflow as tf
        from keras_transfer.export import export_saved_model

        report = export_saved_model(model, item["export"], verify_data=x)
        served = tf.saved_model.load(report.path).signatures["serving_default"]
        out[f"{name}/saved_model"] = served(inputs=tf.constant(x))["probabilities"].numpy()
np.savez(manifest["output"], **out)
print("loaded", len(manifest["models"]))
"""


def _vgg_preset(path: str) -> None:
    import keras_hub

    backbone = keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1, 1],
        stackwise_num_filters=[4, 8],
        image_shape=(16, 16, 3),
    )
    backbone.save_to_preset(path)
    keras_hub.layers.ImageConverter(
        image_size=(16, 16), scale=1 / 255.0
    ).save_to_preset(path)


def _models(tmp: Path):
    """(name, model, inputs, extra) for every model kind that builds offline fast."""
    from helpers import tiny_bn_backbone
    from test_backbones import make_hub_module

    from keras_transfer._backend import keras, tf
    from keras_transfer.adaptation import DomainAdaptationModel
    from keras_transfer.multitask import build_multitask

    rng = np.random.default_rng(0)
    images16 = rng.uniform(0, 255, (4, 16, 16, 3)).astype("float32")

    apps = keras_transfer.build_classifier(
        "keras_applications:MobileNetV3Small",
        3,
        weights=None,
        input_shape=(32, 32, 3),
        unfreeze_depth="all",
        backbone_learning_rate=1e-5,
    )
    x32 = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    apps.fit(x32, np.arange(4) % 3, epochs=1, verbose=0)
    yield "applications", apps, x32, {"optimizer": True, "export": True}

    preset = str(tmp / "vgg_preset")
    _vgg_preset(preset)
    hub = keras_transfer.build_classifier(f"keras_hub:{preset}", 3)
    yield "keras_hub", hub, images16, {}

    hub_dir = str(tmp / "tfhub")
    tf.saved_model.save(make_hub_module(), hub_dir)
    tfhub = keras_transfer.build_classifier(f"tfhub:{hub_dir}", 3, input_shape=(4,))
    yield "tfhub", tfhub, rng.normal(size=(4, 4)).astype("float32"), {}

    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    dann = DomainAdaptationModel(encoder, 2, method="dann")
    yield "dann", dann.inference_model(), rng.normal(size=(4, 4)).astype("float32"), {}

    multitask = build_multitask(
        tiny_bn_backbone(),
        {"digit": "classification:4", "size": "regression"},
    )
    yield "multitask", multitask, images16, {}

    augmented = keras_transfer.build_classifier(
        tiny_bn_backbone(),
        3,
        augmentation={"flip": "horizontal", "rotation": 0.1, "label_smoothing": 0.1},
    )
    augmented.fit(images16, np.arange(4) % 3, epochs=1, verbose=0)
    yield "augmentation", augmented, images16, {}


@pytest.mark.large
def test_every_model_kind_loads_and_exports_in_a_fresh_process(tmp_path):
    manifest = {"models": {}, "output": str(tmp_path / "out.npz")}
    expected = {}
    for name, model, x, extra in _models(tmp_path):
        path = tmp_path / f"{name}.keras"
        keras_transfer.save_model(model, path)
        expected[f"{name}/trainable"] = np.array(len(model.trainable_variables))
        np.save(tmp_path / f"{name}_x.npy", x)
        item = {"path": str(path), "x": str(tmp_path / f"{name}_x.npy")}
        pred = model.predict(x, verbose=0)
        if isinstance(pred, dict):
            expected.update({f"{name}/{k}": np.asarray(v) for k, v in pred.items()})
        else:
            expected[name] = np.asarray(pred)
        if extra.get("optimizer"):
            item["optimizer"] = True
            for i, v in enumerate(model.optimizer.variables):
                expected[f"{name}/opt/{i}"] = v.numpy()
        if extra.get("export"):
            item["export"] = str(tmp_path / f"{name}_saved_model")
            expected[f"{name}/saved_model"] = np.asarray(pred)
        manifest["models"][name] = item
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "manifest.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(manifest["output"]) as got:
        assert sorted(got.files) == sorted(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, atol=1e-5, err_msg=key)


def test_load_model_docstring_example_runs():
    import inspect

    from keras_transfer import saving

    blocks = re.findall(r"```python\n(.*?)```", inspect.getdoc(saving.load_model), re.S)
    assert blocks
    exec(compile(blocks[0], "<docstring>", "exec"), {})


# ------------------------------------------------ save_model: frozen layers on reload
@pytest.fixture(scope="module")
def vgg_preset(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vgg") / "preset")
    _vgg_preset(path)
    return path


def _fitted_hub_classifier(preset: str, depth: int):
    model = keras_transfer.build_classifier(
        f"keras_hub:{preset}", 3, unfreeze_depth=depth
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    return model, x


@pytest.mark.parametrize("depth", [0, 1])
def test_save_model_keeps_keras_hub_frozen_layers_and_optimizer(
    tmp_path, vgg_preset, depth
):
    import warnings

    from keras_transfer._backend import keras

    model, x = _fitted_hub_classifier(vgg_preset, depth)
    path = keras_transfer.save_model(model, tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = keras_transfer.load_model(path)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    names = sorted(v.path.split("/", 1)[1] for v in model.trainable_variables)
    got = sorted(v.path.split("/", 1)[1] for v in reloaded.trainable_variables)
    assert got == names
    saved = [v.numpy() for v in model.optimizer.variables]
    loaded = [v.numpy() for v in reloaded.optimizer.variables]
    assert len(loaded) == len(saved) > 2
    for a, b in zip(saved, loaded):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    # What the record fixes: Keras alone rebuilds the backbone all trainable (the
    # same file, the record ignored; keras-hub 0.32 -- see the README).
    plain = keras.saving.load_model(path, compile=False)
    assert len(plain.trainable_variables) > len(model.trainable_variables)
    np.testing.assert_allclose(
        plain.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_save_model_keeps_untrained_batchnorm_mark(tmp_path):
    from helpers import tiny_bn_backbone

    from keras_transfer.normalization import UNTRAINED_FLAG, batchnorm_layers

    model = keras_transfer.build_classifier(
        tiny_bn_backbone(pretrained=False), 2, unfreeze_depth="all"
    )
    marked = [bool(getattr(b, UNTRAINED_FLAG, False)) for b in batchnorm_layers(model)]
    assert any(marked)
    path = keras_transfer.save_model(model, tmp_path / "m.keras")
    reloaded = keras_transfer.load_model(path)
    got = [bool(getattr(b, UNTRAINED_FLAG, False)) for b in batchnorm_layers(reloaded)]
    assert got == marked


def test_load_model_restores_after_loading_when_the_class_cannot_be_wrapped(
    tmp_path, vgg_preset, monkeypatch, caplog
):
    from keras_transfer import saving

    model, _ = _fitted_hub_classifier(vgg_preset, 0)
    path = keras_transfer.save_model(model, tmp_path / "m.keras")
    monkeypatch.setattr(saving, "_restorer", lambda *args: None)
    with caplog.at_level("WARNING", logger="keras_transfer"):
        reloaded = keras_transfer.load_model(path)
    assert len(reloaded.trainable_variables) == len(model.trainable_variables)
    assert "recompiled with a fresh optimizer" in caplog.text
    assert reloaded.optimizer is not None


def test_save_model_is_whole_or_nothing(tmp_path, monkeypatch):
    from keras_transfer._backend import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    nested = keras_transfer.save_model(model, tmp_path / "new" / "dir" / "m.keras")
    assert keras_transfer.load_model(nested).count_params() == model.count_params()
    shutil.rmtree(tmp_path / "new")
    path = keras_transfer.save_model(model, tmp_path / "m.keras")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"ending in '\.keras'"):
        keras_transfer.save_model(model, tmp_path / "m.h5")

    def broken_save(*args, **kwargs):
        Path(args[0]).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        keras_transfer.save_model(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_load_model_warns_when_plain_save_lost_keras_hub_flags(tmp_path, vgg_preset):
    import warnings

    model, _ = _fitted_hub_classifier(vgg_preset, 0)
    model.save(tmp_path / "plain.keras")
    with pytest.warns(UserWarning, match=r"does not keep a KerasHub backbone's frozen"):
        keras_transfer.load_model(tmp_path / "plain.keras")
    with pytest.warns(UserWarning, match=r"\(VGGBackbone\)"):
        keras_transfer.load_model(tmp_path / "plain.keras")
    # Loading only to predict, or a file that keeps the flags: no warning.
    keras_transfer.save_model(model, tmp_path / "kept.keras")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*KerasHub backbone's frozen")
        keras_transfer.load_model(tmp_path / "plain.keras", compile=False)
        keras_transfer.load_model(tmp_path / "kept.keras")
