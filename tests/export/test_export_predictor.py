"""load_tflite predictor and export_main (the CLI entry point)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_transfer.export import (
    CorruptedExportError,
    export_main,
    export_tflite,
    load_array_file,
    load_tflite,
)


@pytest.fixture(scope="module")
def exported(digits_model, digits, tmp_path_factory, class_names):
    path = tmp_path_factory.mktemp("pred") / "f32"
    export_tflite(
        digits_model, path, verify_data=digits[2][:32], class_names=class_names
    )
    return path


def test_predict_single_and_batch(exported, digits, digits_model, keras_probs):
    x = digits[2][:9]
    predictor = load_tflite(exported)
    assert predictor.input_shape == (16, 16, 3)
    batch = predictor.predict(x)
    single = predictor.predict(x[0])
    assert batch.shape == (9, 10) and single.shape == (10,)
    np.testing.assert_allclose(single, batch[0], atol=1e-6)
    np.testing.assert_allclose(batch, keras_probs(digits_model, x), atol=1e-5)
    # Batch size changes back and forth work (the interpreter is resized).
    assert predictor.predict(x[:3]).shape == (3, 10)


def test_predict_classes_uses_manifest_names(exported, digits, class_names):
    predictor = load_tflite(exported / "model.tflite")  # the file works too
    names = predictor.predict_classes(digits[2][:4])
    ids = predictor.predict(digits[2][:4]).argmax(-1)
    assert names == [class_names[i] for i in ids]
    assert predictor.predict_classes(digits[2][0]) == names[0]


def test_wrong_input_shape(exported):
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*Received: shape \(2, 8, 8"):
        load_tflite(exported).predict(np.zeros((2, 8, 8, 3)))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_or_truncated_file(exported, tmp_path, damage):
    copy = tmp_path / "copy"
    copy.mkdir()
    data = (exported / "model.tflite").read_bytes()
    (copy / "manifest.json").write_bytes((exported / "manifest.json").read_bytes())
    if damage == "flip":
        data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    else:
        data = data[: len(data) // 2]
    (copy / "model.tflite").write_bytes(data)
    word = "corrupted" if damage == "flip" else "truncated"
    with pytest.raises(CorruptedExportError, match=f"looks {word}.*sha256"):
        load_tflite(copy)
    # Without a manifest the interpreter's own failure is reported just as clearly.
    (copy / "manifest.json").unlink()
    if damage == "truncate":
        with pytest.raises(CorruptedExportError, match="corrupted, truncated"):
            load_tflite(copy / "model.tflite")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.tflite"):
        load_tflite(tmp_path)


def test_export_main_from_keras_file(digits_model, digits, tmp_path):
    x_train, y_train, x_test, y_test = digits
    model_file = tmp_path / "digits.keras"
    digits_model.save(model_file)
    data_file = tmp_path / "calib.npz"
    np.savez(data_file, x=x_train[:150], y=y_train[:150])
    out = tmp_path / "out"
    report = export_main(
        model_file,
        format="tflite",
        quantization="int8",
        representative=data_file,
        output=out,
    )
    assert report.quantization == "int8" and report.top1_agreement >= 0.99
    assert report.keras_accuracy is not None
    assert json.loads((out / "manifest.json").read_text())["quantization"] == "int8"
    with pytest.raises(FileExistsError):
        export_main(model_file, representative=data_file, output=out)
    sm = export_main(model_file, format="saved_model", output=tmp_path / "sm")
    assert sm.format == "saved_model" and (tmp_path / "sm" / "saved_model.pb").exists()


def test_export_main_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="format='onnx'"):
        export_main(tmp_path / "m.keras", format="onnx")
    with pytest.raises(ValueError, match="quantization applies to tflite"):
        export_main(tmp_path / "m.keras", format="saved_model", quantization="int8")
    with pytest.raises(FileNotFoundError, match="m.keras"):
        export_main(tmp_path / "m.keras")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=".npy or .npz"):
        load_array_file(tmp_path / "x.txt")
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    x, y = load_array_file(tmp_path / "x.npy")
    assert x.shape == (3, 2) and y is None
