"""TFLite conversion: a ``TFLiteConverter`` set up for one quantization, and its errors.

The route is ``keras.export.ExportArchive`` -> SavedModel ->
``tf.lite.TFLiteConverter.from_saved_model``. ``benchmarks/tflite_routes.py``
(``benchmarks/results/tflite_routes.json``) measured it against
``TFLiteConverter.from_keras_model`` and ``model.export(format="litert")`` with TF 2.21
and Keras 3.15 on a small CNN, MobileNetV3Small at 32 px, a CNN behind augmentation
layers and a DANN inference model: all three convert and verify every one, float32
and full int8, with the same outputs and sizes within a few bytes, because both
others run the same ExportArchive -> SavedModel steps inside. The bytes differ in
names: their signature input is the Keras tensor's generated name (``keras_tensor``,
``keras_tensor_15``... depending on what the process built before), ours is always
``inputs``. This route is kept: it converts the served function (the inference path
with a folded ``preprocessor`` and a raw input dtype such as uint8), shares
``write_saved_model`` with `export_saved_model`, and hands selective int8 the
converter object the quantization debugger needs (``model.export`` hides it, and
allows TF Select ops unless told otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.config import QUANTIZATIONS
from keras_transfer.export.report import UnsupportedOpError

CONVERTER = "tf.lite.TFLiteConverter.from_saved_model"  # named in the manifest
INT8 = ("int8", "int8-full")
INT16X8 = "int16x8"
#: Quantizations that calibrate on representative data.
CALIBRATED = (*INT8, INT16X8)


def normalize_quantization(quantization: str | None) -> str:
    q = "float32" if quantization in (None, "none", "float32") else quantization
    if q not in QUANTIZATIONS:
        raise ValueError(
            "Expected quantization to be None, 'float16', 'dynamic', 'int8', "
            f"'int8-full' or 'int16x8'. Received: quantization={quantization!r}"
        )
    return q


def unsupported_ops(message: str) -> list[str]:
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    for line in re.findall(r"(?:TF Select|Custom) ops: ([^\n]+)", message):
        ops += [o.strip() for o in line.split(",")]
    return sorted(set(o for o in ops if o))


def make_converter(
    saved_model_dir: str,
    quantization: str,
    representative: np.ndarray | None,
    allow_select_tf_ops: bool,
    int8_io: bool,
    for_debugger: bool = False,
) -> Any:
    """A configured ``TFLiteConverter``; ``for_debugger`` leaves the op set and the
    I/O types to the quantization debugger (it needs a calibrate-only converter).

    ``"int16x8"`` is LiteRT's 16x8 mode: int8 weights, int16 activations
    (``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``), float32 I/O,
    with ``TFLITE_BUILTINS`` allowed so an op without a 16x8 kernel stays in float
    instead of failing the conversion (`float_op_outputs` finds such ops).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"]
    )
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization in ("float16", "dynamic", *CALIBRATED):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in CALIBRATED:
        samples = representative.astype("float32")

        def gen():
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        converter.representative_dataset = gen
        if quantization == INT16X8:
            opsset = tf.lite.OpsSet
            int16 = opsset.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ops = [int16, opsset.TFLITE_BUILTINS]
        elif not for_debugger:
            ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io and not for_debugger and quantization in INT8:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if allow_select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter


def convert(
    saved_model_dir: str,
    quantization: str,
    representative: np.ndarray | None,
    allow_select_tf_ops: bool,
    int8_io: bool,
) -> bytes:
    converter = make_converter(
        saved_model_dir, quantization, representative, allow_select_tf_ops, int8_io
    )
    try:
        return converter.convert()
    except Exception as err:  # ConverterError is not exported publicly
        message = str(err)
        ops_found = unsupported_ops(message)
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


def tensor_specs(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def float_op_outputs(content: bytes) -> list[dict[str, Any]]:
    """Ops of a quantized file that compute in float: ``[{"tensor", "op"}]``.

    An op counts as float when one of its outputs is a float tensor, except the
    ``DEQUANTIZE`` that turns the last integer tensor back into a float32 output (and
    the ``QUANTIZE`` that starts the integer part, whose output is integer).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 - no public op list
        if op["op_name"] == "DEQUANTIZE":
            continue
        for index in op["outputs"]:
            tensor = tensors.get(int(index))
            if tensor is not None and np.dtype(tensor["dtype"]).kind == "f":
                found.append({"tensor": tensor["name"], "op": op["op_name"]})
                break
    return found


def io_specs(file: Path) -> dict[str, Any]:
    """Input/output specs read from the file (works without the Flex delegate)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(file))
    return {
        "inputs": tensor_specs(interpreter.get_input_details()),
        "outputs": tensor_specs(interpreter.get_output_details()),
    }
