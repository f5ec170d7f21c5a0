"""Runs exported files and compares them with the Keras model they came from."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from keras_transfer.export._inference import top1
from keras_transfer.export.report import ExportReport


class FlexOpsError(RuntimeError):
    """The file has TF Select (Flex) ops and no local interpreter can run them."""


def make_interpreter(
    model_path: str | None = None,
    model_content: bytes | None = None,
    num_threads: int | None = None,
    input_shape: tuple | None = None,
) -> tuple[Any, str]:
    """Returns ``(interpreter, runtime_name)``, preferring ``ai_edge_litert``.

    ``input_shape`` (with batch axis) sizes an input whose non-batch dims are unknown
    (a model for any image size) before the tensors are allocated.

    Models with TF Select (Flex) ops need the Flex delegate. ``ai_edge_litert`` does
    not link it; ``tf.lite.Interpreter`` is tried as a fallback (older TensorFlow
    wheels link it; 2.21 does not).

    Raises:
        FlexOpsError: Flex ops that no installed interpreter can run.
    """
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_path": model_path, "model_content": model_content}
    interpreter = Interpreter(**kwargs, num_threads=num_threads)
    _size_input(interpreter, input_shape)
    try:
        interpreter.allocate_tensors()
        return interpreter, "ai_edge_litert"
    except RuntimeError as err:
        if "Flex" not in str(err) and "Select TensorFlow" not in str(err):
            raise
        first_error = err
    import warnings

    from keras_transfer._backend import tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(**kwargs, num_threads=num_threads)
    _size_input(interpreter, input_shape)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as err:
        ops = sorted(set(re.findall(r"\(Flex(\w+)\)", str(first_error))))
        raise FlexOpsError(
            f"The TFLite model uses TF Select (Flex) ops {ops or ''} and neither "
            "ai_edge_litert nor tf.lite.Interpreter here links the Flex delegate, so "
            "it cannot be run on this machine. Export with verify=False to write it "
            "unverified (run it where tensorflow-lite-select-tf-ops is available), "
            "or replace the layers using these ops."
        ) from err
    return interpreter, "tf.lite.Interpreter (Flex ops)"


PLACEHOLDER_SIZE = 224  # unknown input dims get this until real inputs arrive


def _size_input(interpreter: Any, input_shape: tuple | None) -> None:
    """Gives unknown non-batch input dims a size before allocation: ``input_shape``,
    else `PLACEHOLDER_SIZE` (TFLite's default of 1 cannot pass a 3x3 convolution);
    `run_interpreter` resizes to the inputs it gets."""
    inp = interpreter.get_input_details()[0]
    signature = list(inp.get("shape_signature", inp["shape"]))
    if not any(d == -1 for d in signature[1:]):
        return
    if input_shape is None or len(input_shape) != len(signature):
        input_shape = [1] + [PLACEHOLDER_SIZE if d == -1 else d for d in signature[1:]]
    interpreter.resize_tensor_input(inp["index"], [int(d) for d in input_shape])


def quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Converts float inputs to the interpreter's input dtype (int8/uint8 scale)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        q = np.round(x.astype("float32") / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Converts int8/uint8 outputs back to float32 with the tensor's scale."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(np.dtype(detail["dtype"]), np.integer) and scale:
        return (y.astype("float32") - zero_point) * scale
    return y.astype("float32")


def run_interpreter(interpreter: Any, x: np.ndarray) -> np.ndarray:
    """Runs a single-input, single-output interpreter on a batch of inputs."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    batch = len(x)
    signature = list(inp.get("shape_signature", inp["shape"]))
    if len(signature) == x.ndim and list(inp["shape"]) != list(x.shape):
        # Unknown (-1) dims other than the batch (e.g. any image size): take the
        # inputs' size, and the batch too when that is unknown.
        fixed = all(s == -1 or s == d for s, d in zip(signature[1:], x.shape[1:]))
        if fixed and any(s == -1 for s in signature[1:]):
            shape = [batch if signature[0] == -1 else signature[0], *x.shape[1:]]
            if list(inp["shape"]) != shape:
                interpreter.resize_tensor_input(inp["index"], shape)
                interpreter.allocate_tensors()
            inp = interpreter.get_input_details()[0]
            out = interpreter.get_output_details()[0]
    if inp["shape"][0] != batch:
        signature = inp.get("shape_signature", inp["shape"])
        if len(signature) and signature[0] == -1:
            interpreter.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
            interpreter.allocate_tensors()
        else:  # fixed batch size: run one example at a time
            return np.concatenate(
                [run_interpreter(interpreter, x[i : i + 1]) for i in range(batch)]
            )
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], quantize(x, inp))
    interpreter.invoke()
    return dequantize(interpreter.get_tensor(out["index"]), out)


def median_latency_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def compare(
    report: ExportReport,
    expected: np.ndarray,
    actual: np.ndarray,
    labels: np.ndarray | None,
) -> None:
    """Fills agreement, differences and accuracies of ``report``."""
    expected = np.asarray(expected, "float32").reshape(len(expected), -1)
    actual = np.asarray(actual, "float32").reshape(len(actual), -1)
    if expected.shape != actual.shape:
        raise RuntimeError(
            f"The exported model returns outputs of shape {actual.shape}, the Keras "
            f"model {expected.shape}."
        )
    diff = np.abs(expected - actual)
    report.num_samples = len(expected)
    report.max_abs_diff = float(diff.max())
    report.mean_abs_diff = float(diff.mean())
    ref, got = top1(expected), top1(actual)
    report.top1_agreement = float(np.mean(ref == got))
    differ = ref != got
    report.disagreement_margin = (
        float(top_margin(expected[differ]).max()) if differ.any() else None
    )
    if labels is not None:
        labels = np.asarray(labels).reshape(len(labels), -1)
        if labels.shape[1] > 1:  # one-hot labels
            labels = labels.argmax(-1)
        labels = labels.reshape(-1).astype("int64")
        report.keras_accuracy = float(np.mean(ref == labels))
        report.export_accuracy = float(np.mean(got == labels))
    report.verified = True


def top_margin(probs: np.ndarray) -> np.ndarray:
    """Per input, how far the top class is ahead of the runner-up (probabilities;
    ``|2p - 1|`` for one-unit outputs)."""
    probs = np.asarray(probs, "float32").reshape(len(probs), -1)
    if probs.shape[1] == 1:
        return np.abs(2.0 * probs[:, 0] - 1.0)
    top2 = np.sort(probs, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


#: Disagreements whose Keras margin is at most this are called near-ties.
NEAR_TIE = 0.05


def keras_predict(
    fn: Callable[[Any], Any], x: np.ndarray, batch: int = 64
) -> np.ndarray:
    """Runs the Keras inference function over ``x`` in batches (training=False)."""
    outs = [np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def threshold_for(quantization: str, min_agreement: float | None) -> float:
    """Default agreement threshold: 0.99 for int8/dynamic, 0.999 for float."""
    if min_agreement is not None:
        if not 0.0 <= min_agreement <= 1.0:
            raise ValueError(
                "Expected min_agreement to be in [0, 1]. Received: "
                f"min_agreement={min_agreement}"
            )
        return float(min_agreement)
    return (
        0.99 if quantization in ("int8", "int8-full", "int16x8", "dynamic") else 0.999
    )


def problems(report: ExportReport, max_abs_diff: float | None) -> list[str]:
    """What keeps ``report`` from passing (empty when it passes)."""
    found = []
    if report.top1_agreement is not None and report.top1_agreement < report.threshold:
        line = (
            f"top-1 agreement {report.top1_agreement:.4f} < threshold "
            f"{report.threshold} on {report.num_samples} inputs"
        )
        margin = report.disagreement_margin
        if margin is not None and margin <= NEAR_TIE:
            line += (
                f" (every input that disagrees is a near-tie of the Keras model: its "
                f"top class leads the runner-up by at most {margin:.3g} there; a "
                "model this unsure flips on small numerical changes, so check its "
                "accuracy, or accept it knowingly with a lower min_agreement)"
            )
        found.append(line)
    if (
        max_abs_diff is not None
        and report.max_abs_diff is not None
        and report.max_abs_diff > max_abs_diff
    ):
        found.append(f"max |diff| {report.max_abs_diff:.4g} > allowed {max_abs_diff}")
    return found


def enforce(
    report: ExportReport, max_abs_diff: float | None, hint: str | None = None
) -> None:
    """Raises `ExportVerificationError` with the numbers when verification failed.

    Args:
        report: ExportReport. Filled by `compare`.
        max_abs_diff: float or None. Optional bound on the largest difference.
        hint: str. What to try instead; defaults to float formats, more data or
            ``verify=False``.
    """
    from keras_transfer.export.report import ExportVerificationError

    found = problems(report, max_abs_diff)
    if found:
        hint = hint or (
            "Try a float format, more representative_data, or pass verify=False "
            "to export anyway."
        )
        raise ExportVerificationError(
            f"The exported {report.format} model ({report.quantization}) does not "
            f"match the Keras model: {'; '.join(found)} (max |diff| "
            f"{report.max_abs_diff:.4g}, mean |diff| {report.mean_abs_diff:.4g}). "
            f"Nothing was written. {hint}",
            report,
        )
