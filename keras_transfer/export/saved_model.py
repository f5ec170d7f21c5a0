"""SavedModel export for TF Serving, with a ``serving_default`` signature, verified."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.export import _pipeline, _verify
from keras_transfer.export._serving import Served, write_saved_model
from keras_transfer.export.report import ExportReport


def _verify_dir(
    report: ExportReport,
    served: Served,
    directory: Path,
    x: np.ndarray,
    y: np.ndarray | None,
    repeats: int,
) -> None:
    loaded = tf.saved_model.load(str(directory))
    signature = loaded.signatures["serving_default"]
    dtype = tf.as_dtype(served.raw_dtype)

    def run(batch: np.ndarray) -> np.ndarray:
        return signature(inputs=tf.constant(batch, dtype))["probabilities"].numpy()

    actual = _verify.keras_predict(run, x)
    expected = _verify.keras_predict(served.keras_predict, x)
    _verify.compare(report, expected, actual, y)
    one = x[:1]
    report.latency_ms = _verify.median_latency_ms(lambda: run(one), repeats)
    report.keras_latency_ms = _verify.median_latency_ms(
        lambda: served.keras_predict(one), repeats
    )
    report.interpreter = "tf.saved_model.load"


def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def export_saved_model(
    model: Any,
    path: str | os.PathLike | None = None,
    *,
    include_preprocessing: bool = True,
    preprocessor: Any = None,
    input_shape: tuple | None = None,
    input_dtype: str | None = None,
    class_names: list[str] | None = None,
    verify_data: Any = None,
    verify: bool = True,
    overwrite: bool = False,
    metrics: dict[str, Any] | None = None,
    min_agreement: float | None = None,
    max_abs_diff: float | None = None,
    latency_repeats: int = 20,
) -> ExportReport:
    """Exports the inference path of a model as a verified SavedModel.

    The SavedModel has one signature, ``serving_default``, taking raw ``inputs``
    (``input_dtype``: e.g. uint8 images, cast to float32 inside) and returning a dict
    with ``probabilities``, ``class_ids`` and, when ``class_names`` is given,
    ``class_names`` (strings). The directory is written to a temporary sibling,
    reloaded and compared with Keras, then moved into place with ``manifest.json``.

    Args:
        model: keras.Model, or an object with ``inference_model()``. Training-only
            layers (augmentation, GradientReversal) are left out.
        path: str. Export directory: the folder receives ``saved_model.pb`` and
            ``manifest.json`` (a path ending in ``.tflite``, ``.keras``, ``.pb``
            and other model-file suffixes is refused). Defaults to
            ``saved_models/<model.name>/saved_model``.
        include_preprocessing: bool. Fold ``preprocessor`` into the signature, so it
            takes raw inputs. Models built with ``build_classifier(...,
            include_preprocessing=True)`` already contain theirs. Defaults to True.
        preprocessor: keras Layer or callable mapping raw inputs to model inputs
            (e.g. ``LoadedBackbone.preprocessor``); needs ``input_shape``. A string
            ``input_dtype`` works when it is made of TF ops. Defaults to None.
        input_shape: tuple. Raw input shape without batch axis. Defaults to the
            model's.
        input_dtype: str. Dtype of the signature input: ``"float32"``, ``"uint8"``,
            ``"string"``... Defaults to the model's input dtype (float32).
        class_names: list of str. Returned by the signature and written to the
            manifest. Defaults to None.
        verify_data: array, ``(x, y)`` or dataset of inputs to verify on (up to 500
            drawn at random, seed 1, as `export_tflite` does). Defaults to 64
            random inputs (a note says so).
        verify: bool. Reload and compare before writing. Defaults to True.
        overwrite: bool. Replace an existing export. Defaults to False.
        metrics: dict. Training metrics for the manifest. Defaults to the last epoch
            of ``model.history``.
        min_agreement: float. Top-1 agreement to reach. Defaults to 0.999.
        max_abs_diff: float. Optional bound on the largest output difference.
        latency_repeats: int. Timed runs for the latency numbers. Defaults to 20.

    Returns:
        ExportReport: with ``format="saved_model"``.

    Raises:
        ValueError: a never-built model, several inputs/outputs, wrong-shaped data.
        FileExistsError: ``path`` exists and ``overwrite`` is False, or it is a
            non-empty folder that is not an export (no ``manifest.json``).
        ExportVerificationError: the reloaded SavedModel disagrees with Keras.

    Examples:
    ```python
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_transfer.export import export_saved_model

    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    images_uint8 = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), "uint8")

    report = export_saved_model(model, f"{tempfile.mkdtemp()}/digits/saved_model",
                                input_dtype="uint8", class_names=["cat", "dog", "fox"])
    served = tf.saved_model.load(report.path).signatures["serving_default"]
    names = served(inputs=tf.constant(images_uint8))["class_names"]  # 4 byte strings
    assert set(names.numpy()) <= {b"cat", b"dog", b"fox"} and names.shape == (4,)
    ```
    """
    class_names = _pipeline.validate_class_names(class_names)
    job = _pipeline.begin(
        model,
        path,
        fmt="saved_model",
        quantization="float32",
        leaf="saved_model",
        overwrite=overwrite,
        min_agreement=min_agreement,
        input_shape=input_shape,
        input_dtype=input_dtype,
        preprocessor=preprocessor,
        include_preprocessing=include_preprocessing,
    )
    served, report = job.served, job.report
    _pipeline.check_class_names(served, class_names)

    def write(tmp: Path) -> dict[str, Any]:
        write_saved_model(served, str(tmp), class_names=class_names)
        report.size_bytes = _dir_size(tmp)
        if verify:
            vx, vy = job.verification_inputs(verify_data, seed=1)
            if served.raw_dtype == "uint8" and vx.dtype != np.uint8:
                vx = np.clip(vx, 0, 255).astype("uint8")
            _verify_dir(report, served, tmp, vx, vy, latency_repeats)
            _verify.enforce(report, max_abs_diff)
        outputs = [{"name": "probabilities", "dtype": "float32"}]
        outputs.append({"name": "class_ids", "shape": [None], "dtype": "int64"})
        if class_names is not None:
            outputs.append({"name": "class_names", "shape": [None], "dtype": "string"})
        spec = {"name": "inputs", "shape": [None, *served.shape]}
        return {
            "signature": "serving_default",
            "inputs": [{**spec, "dtype": served.raw_dtype}],
            "outputs": outputs,
        }

    return job.write(write, metrics=metrics, class_names=class_names)
