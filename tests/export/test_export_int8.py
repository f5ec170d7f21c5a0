"""int8 export: seeded random calibration, selective int8, int8-full refusal, and
calibration on both domains for an `adapt` run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_transfer._backend import keras, tf
from keras_transfer.export import ExportVerificationError, export_tflite, load_tflite
from keras_transfer.export._io import sample_array

# Deliberately strict: full int8 of the fixture model misses these (its softmax
# output alone is quantized in steps of 1/256 and errors add up to ~0.03).
STRICT = {"min_agreement": 1.0, "max_abs_diff": 0.01}


def test_int8_ladder_refuses_a_file_no_smaller_than_float32(
    digits_model, digits, tmp_path
):
    """The fixture's top-ranked op is its Dense layer (most of the weights): the one
    selective file that passes keeps it in float and is larger than the float32
    file. The ladder refuses it rather than write an "int8" file that is neither
    smaller nor exact (selective int8 that passes: test_export_int16x8.py)."""
    x_train, _, x_test, y_test = digits
    float32 = export_tflite(digits_model, tmp_path / "f32").size_bytes
    path = tmp_path / "int8"
    with pytest.raises(
        ExportVerificationError, match="smaller than the float32"
    ) as info:
        export_tflite(
            digits_model,
            path,
            quantization="int8",
            representative_data=x_train,
            verify_data=(x_test, y_test),
            **STRICT,
        )
    assert not path.exists()
    report = info.value.report
    tried = report.modes_tried
    assert [(m["mode"], m["passed"]) for m in tried] == [
        ("full", False),
        ("selective", False),
        ("int16x8", False),
        ("selective", False),
    ]
    assert tried[1]["size_budget_bytes"] == int(1.25 * report.full_int8_size_bytes)
    assert tried[1]["reason"].startswith("over size budget after 0 float ops")
    assert tried[2]["reason"].startswith("failed verification: max |diff|")
    assert tried[3]["size_budget_bytes"] == float32 - 1
    assert tried[3]["reason"].startswith("over size budget after 0 float ops")
    (over,) = report.selective_tried  # Dense in float: past float32's size
    assert over["over_budget"] and over["size_bytes"] >= float32
    assert any("no file smaller than the float32 one" in n for n in report.notes)


def test_int8_full_refuses_with_a_clear_message(digits_model, digits, tmp_path):
    x_train, _, x_test, y_test = digits
    path = tmp_path / "int8-full"
    with pytest.raises(ExportVerificationError, match="quantization='int8'") as info:
        export_tflite(
            digits_model,
            path,
            quantization="int8-full",
            representative_data=x_train,
            verify_data=(x_test, y_test),
            **STRICT,
        )
    message = str(info.value)
    assert "int8-full" in message and "Nothing was written" in message
    assert info.value.report.int8_mode == "full"
    assert info.value.report.float_ops == []
    assert not path.exists()


def test_full_int8_when_it_passes(digits_model, digits, tmp_path):
    x_train, _, x_test, y_test = digits
    report = export_tflite(
        digits_model,
        tmp_path / "int8",
        quantization="int8-full",
        representative_data=x_train,
        verify_data=(x_test, y_test),
        min_agreement=0.9,
    )
    assert report.int8_mode == "full" and report.float_ops == []
    assert report.size_cost_bytes is None
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["quantization"] == "int8-full"
    assert manifest["quantization_details"]["int8_mode"] == "full"


def test_calibration_samples_are_drawn_at_random_and_seeded():
    x = np.arange(1000, dtype="float32").reshape(1000, 1, 1, 1)  # value = index
    y = np.arange(1000)
    a, ya = sample_array((x, y), "data", (1, 1, 1), 50, seed=3)
    b, _ = sample_array((x, y), "data", (1, 1, 1), 50, seed=3)
    c, _ = sample_array((x, y), "data", (1, 1, 1), 50, seed=4)
    first, _ = sample_array(x, "data", (1, 1, 1), 50)  # no seed: the first 50
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a.ravel(), ya)  # labels follow their samples
    assert len(np.unique(a)) == 50 and a.max() > 500  # across the data, not a prefix
    assert np.array_equal(first.ravel(), np.arange(50))
    # A batched dataset is reservoir-sampled over the whole of it, seeded too.
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    d1, dy = sample_array(ds, "data", (1, 1, 1), 50, seed=3)
    d2, _ = sample_array(ds, "data", (1, 1, 1), 50, seed=3)
    assert np.array_equal(d1, d2) and np.array_equal(d1.ravel(), dy)
    assert len(np.unique(d1)) == 50 and d1.max() > 500


def test_export_seed_decides_the_calibration_draw(digits_model, digits, tmp_path):
    x_train = digits[0]

    def content(seed: int, name: str) -> bytes:
        export_tflite(
            digits_model,
            tmp_path / name,
            quantization="int8",
            representative_data=x_train,
            representative_samples=20,
            verify=False,
            seed=seed,
        )
        return (tmp_path / name / "model.tflite").read_bytes()

    first = content(0, "a")
    assert content(0, "b") == first
    assert content(1, "c") != first


def _folder(root: Path, classes: list[str], offset: int, per_class: int = 8) -> Path:
    from PIL import Image

    rng = np.random.default_rng(offset)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 20, (20, 20, 3)) + 60 * c + offset
            Image.fromarray(img.astype("uint8")).save(root / name / f"{i}.png")
    return root


def test_adapt_run_calibrates_on_source_and_target(tmp_path, monkeypatch):
    """An `adapt` run dir (config with source and target): half of the calibration
    and verification inputs come from the target domain."""
    import keras_transfer.export as export_pkg
    from keras_transfer.cli._export import run_export
    from keras_transfer.config import ExportConfig

    classes = ["a", "b"]
    source = _folder(tmp_path / "source", classes, offset=0)
    target = _folder(tmp_path / "target", classes, offset=120)  # brighter domain
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    run = tmp_path / "runs" / "adapted"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    config = {
        "source": {"source": str(source), "image_size": 16, "seed": 0},
        "target": {"source": str(target), "image_size": 16, "seed": 0},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    seen = {}
    real = export_pkg.export_main

    def spy(model, **kw):
        seen["rep"], seen["verify"] = kw["representative"], kw["verify_data"]
        return real(model, **kw)

    monkeypatch.setattr(export_pkg, "export_main", spy)
    cfg = ExportConfig(
        model_path=str(run / "model.keras"),
        quantization=["int8"],
        output=str(tmp_path / "exp"),
    )
    (row,) = run_export(cfg)
    assert "target" in row["data"] and row["int8_mode"] in (
        "full",
        "int16x8",
        "selective",
    )
    rep_x, verify_x = seen["rep"][0], seen["verify"][0]
    brightness = rep_x.reshape(len(rep_x), -1).mean(-1)
    # source images are darker than 80 + 60, target ones brighter than 120
    assert (brightness >= 120).sum() == len(rep_x) // 2
    assert row["calibration_samples"] == len(rep_x) >= 20
    assert (verify_x.reshape(len(verify_x), -1).mean(-1) >= 120).any()


def test_any_size_model_exports_and_loads(tmp_path):
    """A model for any image size (like the demo's VGG): verification and the
    predictor size the input from the data (TFLite's default 1x1 cannot run)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    xs = np.random.default_rng(0).uniform(0, 1, (40, 12, 12, 3)).astype("float32")
    report = export_tflite(
        model, tmp_path / "any", quantization="int8", representative_data=xs
    )
    assert report.verified and report.num_samples == 40
    probs = load_tflite(tmp_path / "any").predict(xs[:5])
    expected = model.predict_on_batch(xs[:5])
    assert probs.shape == (5, 3) and np.abs(probs - expected).max() < 0.05
