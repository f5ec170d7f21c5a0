"""export_tflite: formats, verification, atomic writes, manifests, specific errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.export import (
    ExportVerificationError,
    UnsupportedOpError,
    export_tflite,
    load_tflite,
)
from keras_transfer.export._io import sha256_file


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_float32_export_report_and_manifest(
    digits_model, digits, tmp_path, class_names
):
    _, _, x_test, y_test = digits
    path = tmp_path / "f32"
    report = export_tflite(
        digits_model,
        path,
        verify_data=(x_test, y_test),
        class_names=class_names,
        metrics={"val_accuracy": 0.5},
    )
    assert report.format == "tflite" and report.quantization == "float32"
    assert report.verified and report.verify_source == "verify_data"
    assert report.num_samples == len(x_test)
    assert report.top1_agreement == 1.0
    assert report.max_abs_diff < 1e-4
    assert report.keras_accuracy == report.export_accuracy > 0.7
    assert report.latency_ms > 0 and report.keras_latency_ms > 0
    assert report.stripped_layers == ["flip"]
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.tflite"]
    assert report.size_bytes == (path / "model.tflite").stat().st_size

    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "tflite" and manifest["quantization"] == "float32"
    assert manifest["class_names"] == class_names
    assert manifest["files"]["model.tflite"]["sha256"] == sha256_file(
        path / "model.tflite"
    )
    assert manifest["inputs"][0]["shape"] == [-1, 16, 16, 3]
    assert manifest["outputs"][0]["shape"] == [-1, 10]
    assert manifest["verification"]["top1_agreement"] == 1.0
    assert manifest["training_metrics"] == {"val_accuracy": 0.5}
    assert set(manifest["versions"]) >= {"keras", "tensorflow", "keras_transfer"}
    assert "summary" not in manifest and "verified on" in report.summary()


def test_training_metrics_default_to_history(digits_model, digits, tmp_path):
    x_train = digits[0]
    export_tflite(digits_model, tmp_path / "m", verify_data=x_train[:32])
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert set(manifest["training_metrics"]) == {"loss", "accuracy"}


@pytest.mark.parametrize("quantization", ["float16", "dynamic"])
def test_float16_and_dynamic_are_smaller_and_agree(
    digits_model, digits, tmp_path, quantization
):
    x_train, _, x_test, y_test = digits
    base = export_tflite(digits_model, tmp_path / "f32", verify_data=x_test[:16])
    report = export_tflite(
        digits_model,
        tmp_path / quantization,
        quantization=quantization,
        verify_data=(x_test, y_test),
    )
    assert report.quantization == quantization
    assert report.size_bytes < 0.75 * base.size_bytes
    assert report.top1_agreement >= report.threshold


def test_int8_with_int8_io_and_predictor(
    digits_model, digits, tmp_path, class_names, keras_probs
):
    x_train, _, x_test, y_test = digits
    report = export_tflite(
        digits_model,
        tmp_path / "int8",
        quantization="int8",
        representative_data=x_train[:200],
        verify_data=(x_test, y_test),
        int8_io=True,
        class_names=class_names,
    )
    assert report.threshold == 0.99 and report.top1_agreement >= 0.99
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["inputs"][0]["dtype"] == "int8"
    assert manifest["inputs"][0]["quantization"]["scale"] > 0
    predictor = load_tflite(tmp_path / "int8")
    probs = predictor.predict(x_test[:20])  # uint8 in, quantized inside
    assert probs.dtype == np.float32 and probs.shape == (20, 10)
    expected = keras_probs(digits_model, x_test[:20])
    assert np.abs(probs - expected).max() < 0.1
    assert np.mean(probs.argmax(-1) == expected.argmax(-1)) >= 0.9


def test_representative_dataset_of_batches(digits_model, digits, tmp_path):
    x_train, y_train, _, _ = digits
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(50)
    report = export_tflite(
        digits_model,
        tmp_path / "ds",
        quantization="int8",
        representative_data=ds,
        representative_samples=120,
    )
    assert report.verify_source == "representative_data"
    assert report.num_samples == 120
    assert report.keras_accuracy is not None  # labels came from the dataset


def test_int8_needs_representative_data(digits_model, tmp_path):
    with pytest.raises(ValueError, match="representative_data"):
        export_tflite(digits_model, tmp_path / "x", quantization="int8")
    assert not (tmp_path / "x").exists()


def test_representative_data_of_wrong_shape(digits_model, tmp_path):
    wrong = np.zeros((10, 28, 28, 1), "float32")
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(10, 28, 28, 1\)"):
        export_tflite(
            digits_model, tmp_path / "x", quantization="int8", representative_data=wrong
        )


def test_bad_quantization_and_int8_io_without_int8(digits_model, tmp_path):
    with pytest.raises(ValueError, match="quantization='int4'"):
        export_tflite(digits_model, tmp_path / "x", quantization="int4")
    with pytest.raises(ValueError, match="int8_io"):
        export_tflite(digits_model, tmp_path / "x", int8_io=True)


def test_never_built_model(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="never been built or called"):
        export_tflite(model, tmp_path / "x")


def test_a_file_name_as_export_path_is_refused_with_the_folder_to_pass(
    digits_model, tmp_path
):
    from keras_transfer.export import export_saved_model

    for export, name in ((export_tflite, "model.tflite"), (export_saved_model, "m.pb")):
        with pytest.raises(
            ValueError, match=r"to be a folder.*pass e\.g\. '.*/(model|m)'"
        ):
            export(digits_model, tmp_path / name)
        assert not (tmp_path / name).exists()


def test_existing_path_refused_then_overwritten(digits_model, digits, tmp_path):
    x = digits[2][:16]
    path = tmp_path / "export"
    path.mkdir()
    (path / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_tflite(digits_model, path, verify_data=x)
    assert (path / "keep.txt").read_text() == "old"
    # overwrite replaces an export, never a folder of the user's
    with pytest.raises(FileExistsError, match="is not an export"):
        export_tflite(digits_model, path, verify_data=x, overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == ["keep.txt"]
    (path / "keep.txt").unlink()  # an empty folder may be replaced
    export_tflite(digits_model, path, verify_data=x, overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.tflite"]
    first = (path / "manifest.json").read_text()
    export_tflite(digits_model, path, verify_data=x, overwrite=True)  # an export
    assert (path / "manifest.json").is_file() and first
    assert _siblings(path) == ["export"]  # no temporary or old directories left


def test_failed_verification_writes_nothing(digits_model, digits, tmp_path):
    x_train, _, x_test, _ = digits
    path = tmp_path / "strict"
    with pytest.raises(ExportVerificationError, match=r"max \|diff\|") as info:
        export_tflite(
            digits_model,
            path,
            quantization="int8",
            representative_data=x_train[:100],
            verify_data=x_test[:64],
            max_abs_diff=1e-9,
        )
    assert info.value.report.max_abs_diff > 1e-9
    assert info.value.report.num_samples == 64
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_verify_false_skips_checks(digits_model, tmp_path):
    report = export_tflite(digits_model, tmp_path / "nv", verify=False)
    assert not report.verified and report.top1_agreement is None
    assert (tmp_path / "nv" / "model.tflite").exists()


def test_random_inputs_when_no_data(digits_model, tmp_path):
    report = export_tflite(digits_model, tmp_path / "r", latency_repeats=3)
    assert report.verify_source == "random" and report.num_samples == 64
    assert any("random" in note for note in report.notes)


class _Determinant(keras.layers.Layer):
    """Uses tf.linalg.det, which TFLite builtins lack (a Flex op)."""

    def call(self, x):
        det = tf.linalg.det(tf.reshape(x[:, :4], (-1, 2, 2)))
        return x + det[:, None]


def test_unsupported_op_is_named(tmp_path):
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, activation="softmax")(_Determinant()(inputs))
    model = keras.Model(inputs, outputs)
    with pytest.raises(UnsupportedOpError, match="MatrixDeterminant") as info:
        export_tflite(model, tmp_path / "det")
    assert "allow_select_tf_ops=True" in str(info.value)
    assert info.value.ops == ["MatrixDeterminant"]
    assert not (tmp_path / "det").exists()
    try:  # verifying needs a Flex delegate: TF 2.21 wheels and ai_edge_litert lack it
        report = export_tflite(model, tmp_path / "det", allow_select_tf_ops=True)
        assert report.verified and "Flex" in report.interpreter
    except RuntimeError as err:
        assert "verify=False" in str(err) and "MatrixDeterminant" in str(err)
        assert not (tmp_path / "det").exists()
        report = export_tflite(
            model, tmp_path / "det", allow_select_tf_ops=True, verify=False
        )
        assert not report.verified
    manifest = json.loads((tmp_path / "det" / "manifest.json").read_text())
    assert manifest["select_tf_ops"] is True
    assert manifest["inputs"][0]["shape"] == [-1, 6]


def test_verification_says_when_every_disagreement_is_a_near_tie():
    from keras_transfer.export._verify import compare, problems
    from keras_transfer.export.report import ExportReport

    keras_out = np.array([[0.51, 0.49], [0.9, 0.1], [0.2, 0.8]] * 10, "float32")
    unsure = keras_out.copy()
    unsure[0] = [0.49, 0.51]  # flips where Keras leads by 0.02
    report = ExportReport(path="p", format="tflite", quantization="dynamic")
    report.threshold = 0.99
    compare(report, keras_out, unsure, None)
    assert report.top1_agreement == pytest.approx(29 / 30)
    assert report.disagreement_margin == pytest.approx(0.02, abs=1e-6)
    (message,) = problems(report, None)
    assert "near-tie of the Keras model" in message and "0.02" in message
    confident = keras_out.copy()
    confident[1] = [0.1, 0.9]  # flips where Keras leads by 0.8: a real error
    compare(report, keras_out, confident, None)
    assert report.disagreement_margin == pytest.approx(0.8, abs=1e-6)
    (message,) = problems(report, None)
    assert "near-tie" not in message
    compare(report, keras_out, keras_out, None)
    assert report.disagreement_margin is None and not problems(report, None)
