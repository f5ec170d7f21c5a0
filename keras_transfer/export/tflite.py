"""TFLite (LiteRT) export: SavedModel -> TFLiteConverter, verified with LiteRT."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.export import _io, _verify
from keras_transfer.export._serving import (
    QUANTIZATIONS,
    Served,
    base_manifest,
    prepare,
    random_inputs,
    training_metrics,
    validate_class_names,
    write_saved_model,
)
from keras_transfer.export.report import ExportReport, UnsupportedOpError

MODEL_FILE = "model.tflite"


def _normalize_quantization(quantization: str | None) -> str:
    q = "float32" if quantization in (None, "none", "float32") else quantization
    if q not in QUANTIZATIONS:
        raise ValueError(
            "Expected quantization to be None, 'float16', 'dynamic' or 'int8'. "
            f"Received: quantization={quantization!r}"
        )
    return q


def _unsupported_ops(message: str) -> list[str]:
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    for line in re.findall(r"(?:TF Select|Custom) ops: ([^\n]+)", message):
        ops += [o.strip() for o in line.split(",")]
    return sorted(set(o for o in ops if o))


def _convert(
    saved_model_dir: str,
    quantization: str,
    representative: np.ndarray | None,
    allow_select_tf_ops: bool,
    int8_io: bool,
) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"]
    )
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization in ("float16", "dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        samples = representative.astype("float32")

        def gen():
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        converter.representative_dataset = gen
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if allow_select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        return converter.convert()
    except Exception as err:  # ConverterError is not exported publicly
        message = str(err)
        ops_found = _unsupported_ops(message)
        if ops_found and not allow_select_tf_ops:
            raise UnsupportedOpError(
                f"TFLite cannot convert these TensorFlow ops of the model: "
                f"{', '.join(ops_found)}. Pass allow_select_tf_ops=True to ship them "
                "as TF Select (Flex) ops (the app then needs the "
                "tensorflow-lite-select-tf-ops runtime), or replace the layers that "
                "use them.",
                ops_found,
            ) from err
        if ops_found:
            raise UnsupportedOpError(
                f"TFLite cannot convert these ops even with TF Select: "
                f"{', '.join(ops_found)} (custom ops). Replace the layers using them.",
                ops_found,
            ) from err
        first = message.strip().splitlines()[:3]
        raise RuntimeError(
            f"TFLite conversion ({quantization}) failed: {' '.join(first)[:800]}"
        ) from err


def _tensor_specs(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in details:
        scale, zero_point = d.get("quantization", (0.0, 0))
        out.append(
            {
                "name": d["name"],
                "shape": [int(v) for v in d.get("shape_signature", d["shape"])],
                "dtype": np.dtype(d["dtype"]).name,
                "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
            }
        )
    return out


def _io_specs(file: Path) -> dict[str, Any]:
    """Input/output specs read from the file (works without the Flex delegate)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(file))
    return {
        "inputs": _tensor_specs(interpreter.get_input_details()),
        "outputs": _tensor_specs(interpreter.get_output_details()),
    }


def _verify_file(
    report: ExportReport,
    served: Served,
    file: Path,
    x: np.ndarray,
    y: np.ndarray | None,
    repeats: int,
    num_threads: int | None,
) -> None:
    interpreter, report.interpreter = _verify.make_interpreter(
        str(file), num_threads=num_threads
    )
    actual = _verify.run_interpreter(interpreter, x)
    expected = _verify.keras_predict(served.keras_predict, x)
    _verify.compare(report, expected, actual, y)
    one = x[:1]
    _verify.run_interpreter(interpreter, one)  # resize to batch 1 before timing
    report.latency_ms = _verify.median_latency_ms(
        lambda: _verify.run_interpreter(interpreter, one), repeats
    )
    report.keras_latency_ms = _verify.median_latency_ms(
        lambda: served.keras_predict(one), repeats
    )


def export_tflite(
    model: Any,
    path: str | os.PathLike | None = None,
    *,
    quantization: str | None = None,
    representative_data: Any = None,
    verify_data: Any = None,
    verify: bool = True,
    overwrite: bool = False,
    allow_select_tf_ops: bool = False,
    int8_io: bool = False,
    class_names: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    min_agreement: float | None = None,
    max_abs_diff: float | None = None,
    representative_samples: int = 300,
    input_shape: tuple | None = None,
    preprocessor: Any = None,
    latency_repeats: int = 30,
    num_threads: int | None = None,
) -> ExportReport:
    """Exports the inference path of a model to TFLite and verifies the file.

    The model is written as a SavedModel, converted with
    ``tf.lite.TFLiteConverter.from_saved_model`` (never ``from_keras_model``, which
    fails on Keras 3 models), run with the LiteRT interpreter and compared with Keras.
    The directory ``path`` gets ``model.tflite`` and ``manifest.json`` only when
    verification passes: everything is written to a temporary sibling first and then
    moved into place.

    Args:
        model: keras.Model, or an object with ``inference_model()`` (e.g. DANN).
            Training-only layers (augmentation, GradientReversal) are left out.
        path: str. Export directory. Defaults to
            ``saved_models/<model.name>/tflite-<quantization>``.
        quantization: None (float32), ``"float16"``, ``"dynamic"`` (int8 weights) or
            ``"int8"`` (full integer; needs ``representative_data``). Defaults to None.
        representative_data: array, ``(x, y)`` tuple or ``tf.data.Dataset`` of model
            inputs (100-500 samples) used to calibrate int8; also used to verify when
            ``verify_data`` is None.
        verify_data: array, ``(x, y)`` or dataset of inputs to verify on. With labels,
            the report includes both accuracies. Defaults to the representative data,
            else 64 random inputs (a note says so).
        verify: bool. Run and compare the file before writing it. Defaults to True.
        overwrite: bool. Replace an existing export at ``path``. Defaults to False.
        allow_select_tf_ops: bool. Allow TF Select (Flex) ops. Defaults to False.
        int8_io: bool. With ``"int8"``, make input and output int8 too (the predictor
            from `load_tflite` converts). Defaults to False (float32 I/O).
        class_names: list of str. Written to the manifest. Defaults to None.
        metrics: dict. Training metrics for the manifest. Defaults to the last epoch
            of ``model.history`` when the model was fit.
        min_agreement: float. Top-1 agreement to reach. Defaults to 0.99 for int8 and
            dynamic, 0.999 for float32/float16.
        max_abs_diff: float. Optional bound on the largest output difference.
        representative_samples: int. Calibration samples used at most. Defaults to 300.
        input_shape: tuple. Input shape without batch axis, for subclassed models or
            with a ``preprocessor``. Defaults to the model's input shape.
        preprocessor: keras Layer or callable applied before the model (folded into
            the file). Defaults to None.
        latency_repeats: int. Timed runs for the latency numbers. Defaults to 30.
        num_threads: int. Interpreter threads for verification. Defaults to LiteRT's.

    Returns:
        ExportReport: path, size, agreement, max diff, latency per example, ...

    Raises:
        ValueError: int8 without representative data; data of the wrong shape; a
            never-built model; a bad ``quantization``.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        UnsupportedOpError: an op TFLite cannot convert (named in the message).
        ExportVerificationError: agreement below the threshold (numbers attached).

    Examples:
    ```python
    report = export_tflite(model, "saved_models/digits/tflite-int8",
                           quantization="int8", representative_data=x_train[:200])
    print(report.summary())
    ```
    """
    quantization = _normalize_quantization(quantization)
    class_names = validate_class_names(class_names)
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "Full int8 quantization needs representative_data (100-500 model inputs "
            "as an array or tf.data.Dataset) to calibrate activation ranges. Received: "
            "representative_data=None. Use quantization='dynamic' to quantize weights "
            "only without data."
        )
    if int8_io and quantization != "int8":
        raise ValueError(
            "int8_io=True needs quantization='int8'. Received: "
            f"quantization={quantization!r}"
        )
    served = prepare(model, input_shape=input_shape, preprocessor=preprocessor)
    if path is None:
        path = _io.default_path(served.model, f"tflite-{quantization}")
    _io.check_target(path, overwrite)
    rep_x = rep_y = None
    if representative_data is not None:
        rep_x, rep_y = _io.sample_array(
            representative_data,
            "representative_data",
            served.shape,
            representative_samples,
        )
    report = ExportReport(
        path=str(path),
        format="tflite",
        quantization=quantization,
        threshold=_verify.threshold_for(quantization, min_agreement),
        stripped_layers=list(served.stripped),
        notes=list(served.notes),
    )
    with tempfile.TemporaryDirectory() as sm_dir:
        write_saved_model(served, sm_dir, extra_outputs=False)
        content = _convert(sm_dir, quantization, rep_x, allow_select_tf_ops, int8_io)
    with _io.atomic_directory(path, overwrite) as tmp:
        file = tmp / MODEL_FILE
        file.write_bytes(content)
        report.size_bytes = file.stat().st_size
        if verify:
            if verify_data is not None:
                vx, vy = _io.sample_array(verify_data, "verify_data", served.shape)
                report.verify_source = "verify_data"
            elif rep_x is not None:
                vx, vy, report.verify_source = rep_x, rep_y, "representative_data"
            else:
                vx, vy, report.verify_source = random_inputs(served), None, "random"
                report.notes.append(
                    "verified on random inputs; pass verify_data for real numbers"
                )
            _verify_file(report, served, file, vx, vy, latency_repeats, num_threads)
            _verify.enforce(report, max_abs_diff)
        manifest = base_manifest(
            served,
            "tflite",
            quantization,
            model_file=MODEL_FILE,
            converter="tf.lite.TFLiteConverter.from_saved_model",
            select_tf_ops=allow_select_tf_ops,
            **_io_specs(file),
            class_names=class_names,
            verification=report.verification_dict(),
            training_metrics=training_metrics(model, metrics),
        )
        _io.write_manifest(tmp, manifest)
    report.manifest_path = str(Path(path) / _io.MANIFEST)
    return report
