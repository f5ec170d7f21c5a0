"""export_saved_model: serving signature with raw inputs, class names, manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.export import export_saved_model
from keras_transfer.export._io import sha256_file


def test_serving_signature_takes_uint8_and_returns_names(
    digits_model, digits, tmp_path, class_names, keras_probs
):
    _, _, x_test, y_test = digits
    path = tmp_path / "sm"
    report = export_saved_model(
        digits_model,
        path,
        input_dtype="uint8",
        class_names=class_names,
        verify_data=(x_test, y_test),
    )
    assert report.format == "saved_model" and report.top1_agreement == 1.0
    assert report.max_abs_diff < 1e-5 and report.keras_accuracy > 0.7
    assert report.stripped_layers == ["flip"]

    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    out = serve(inputs=tf.constant(x_test[:8]))
    assert set(out) == {"probabilities", "class_ids", "class_names"}
    expected = keras_probs(digits_model, x_test[:8])
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    ids = expected.argmax(-1)
    assert [n.decode() for n in out["class_names"].numpy()] == [
        class_names[i] for i in ids
    ]
    # The augmentation layer (and its seed state) is not in the SavedModel.
    assert not any("flip" in v.name or "seed" in v.name for v in loaded.variables)

    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["signature"] == "serving_default"
    assert manifest["inputs"][0] == {
        "name": "inputs",
        "shape": [None, 16, 16, 3],
        "dtype": "uint8",
    }
    assert "saved_model.pb" in manifest["files"]
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(path / rel)


def test_preprocessor_is_folded_in(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(pooled))
    preprocessor = keras.layers.Resizing(8, 8)
    x = np.random.default_rng(0).uniform(0, 1, (6, 12, 12, 3)).astype("float32")
    report = export_saved_model(
        model,
        tmp_path / "pp",
        preprocessor=preprocessor,
        input_shape=(12, 12, 3),
        verify_data=x,
    )
    assert report.top1_agreement == 1.0
    serve = tf.saved_model.load(str(tmp_path / "pp")).signatures["serving_default"]
    got = serve(inputs=tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(got, model.predict_on_batch(preprocessor(x)), atol=1e-5)


def test_multi_output_model_needs_inference_path(tmp_path):
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, activation="softmax")(inputs)
    b = keras.layers.Dense(1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, [a, b])
    with pytest.raises(ValueError, match="inference_model"):
        export_saved_model(model, tmp_path / "x")


def test_bad_class_names(digits_model, tmp_path):
    with pytest.raises(ValueError, match="class_names"):
        export_saved_model(digits_model, tmp_path / "x", class_names="0123456789")


def test_class_names_of_another_length_are_refused_before_anything_is_written(
    digits_model, tmp_path
):
    from keras_transfer.export import export_tflite

    for export in (export_saved_model, export_tflite):
        path = tmp_path / export.__name__
        with pytest.raises(
            ValueError,
            match=r"one class name per class.*: 10 .*"
            r"Received: 2 class names \['a', 'b'\]",
        ):
            export(digits_model, path, class_names=["a", "b"])
        assert not path.exists()
    inputs = keras.Input((4,))
    binary = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    with pytest.raises(ValueError, match="2 .*1 unit, a binary sigmoid"):
        export_saved_model(binary, tmp_path / "b", class_names=["yes"], verify=False)
    export_saved_model(binary, tmp_path / "b", class_names=["no", "yes"], verify=False)


def test_both_formats_share_the_manifest_and_the_verify_draw(tmp_path):
    """One pipeline: same shared manifest fields, verify_data drawn the same way."""
    from keras_transfer.export import export_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    x = np.random.default_rng(0).normal(size=(700, 4)).astype("float32")
    y = np.arange(700) % 3
    saved = export_saved_model(model, tmp_path / "sm", verify_data=(x, y))
    lite = export_tflite(model, tmp_path / "tfl", verify_data=(x, y))
    for report in (saved, lite):  # up to 500 drawn at random, not the first 500
        assert report.num_samples == 500 and report.verify_source == "verify_data"
    assert saved.keras_accuracy == lite.keras_accuracy  # the same 500 inputs
    manifests = [
        json.loads((tmp_path / name / "manifest.json").read_text())
        for name in ("sm", "tfl")
    ]
    shared = {"format", "quantization", "created_utc", "source_model", "raw_input"}
    shared |= {"stripped_layers", "notes", "class_names", "verification"}
    shared |= {"training_metrics", "files", "versions"}
    for manifest in manifests:
        assert shared <= set(manifest), shared - set(manifest)
    assert manifests[0]["raw_input"] == manifests[1]["raw_input"]
    assert manifests[1]["converter"] == "tf.lite.TFLiteConverter.from_saved_model"
