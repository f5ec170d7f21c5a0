"""TFLite (LiteRT) export: the served function -> SavedModel -> TFLite, verified.

Conversion itself (and why this route) is in ``_convert``; selective int8's search in
``_selective``; the shared start, verification inputs and verified write in
``_pipeline``.

(Over 400 lines on purpose: `export_tflite` and the int8 ladder it runs -- full, then
selective, then int16x8, each recorded in one report -- are one decision path; the
pieces that stand alone already live in the modules above.)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.export import _convert, _io, _pipeline, _selective, _verify
from keras_transfer.export._convert import CALIBRATED, INT8, INT16X8
from keras_transfer.export._serving import Served, write_saved_model
from keras_transfer.export.report import ExportReport
from keras_transfer.precision import float32_model

MODEL_FILE = "model.tflite"


def _run_content(content: bytes, x: np.ndarray, num_threads: int | None) -> tuple:
    """Runs ``content`` (model bytes) on ``x``; returns ``(outputs, runtime)``."""
    interpreter, runtime = _verify.make_interpreter(
        model_content=content, num_threads=num_threads, input_shape=x.shape
    )
    return _verify.run_interpreter(interpreter, x), runtime


def _time_file(
    report: ExportReport,
    served: Served,
    file: Path,
    x: np.ndarray,
    repeats: int,
    num_threads: int | None,
) -> None:
    """Single-example latency of the written file and of Keras."""
    interpreter, report.interpreter = _verify.make_interpreter(
        str(file), num_threads=num_threads, input_shape=(1, *x.shape[1:])
    )
    one = x[:1]
    _verify.run_interpreter(interpreter, one)  # resize to batch 1 before timing
    report.latency_ms = _verify.median_latency_ms(
        lambda: _verify.run_interpreter(interpreter, one), repeats
    )
    report.keras_latency_ms = _verify.median_latency_ms(
        lambda: served.keras_predict(one), repeats
    )


def _tried(
    mode: str,
    report: ExportReport,
    content: bytes,
    passed: bool,
    max_abs_diff: float | None,
) -> dict:
    """One rung of the int8 ladder as it goes into ``report.modes_tried``."""
    found = _verify.problems(report, max_abs_diff)
    return {
        "mode": mode,
        "top1_agreement": report.top1_agreement,
        "max_abs_diff": report.max_abs_diff,
        "size_bytes": len(content),
        "passed": passed,
        "reason": "passed" if passed else "failed verification: " + "; ".join(found),
    }


def _int16x8(
    report: ExportReport,
    sm_dir: str,
    check: Any,
    rep_x: np.ndarray,
    allow_select_tf_ops: bool,
    int8_io: bool,
    max_abs_diff: float | None,
) -> bytes | None:
    """The ladder's 16x8 rung (int8 weights, int16 activations). Returns the
    passing file's bytes (``report`` filled with its numbers), or None (``report``
    keeps the full int8 numbers, ``modes_tried`` says why)."""
    if int8_io:
        reason = (
            "skipped: int8_io=True asks for int8 inputs and outputs, and 16x8 "
            "files compute on int16 activations"
        )
        report.notes.append(f"int16x8 {reason}")
        report.modes_tried.append(_skipped(INT16X8, reason))
        return None
    full = dataclasses.replace(report, notes=list(report.notes))
    try:
        content = _convert.convert(sm_dir, INT16X8, rep_x, allow_select_tf_ops, False)
        passed = check(content, report)
    except (RuntimeError, ValueError) as err:  # conversion or a missing kernel
        _restore(report, full)
        report.notes.append(f"int16x8 failed: {str(err)[:300]}")
        report.modes_tried.append(_skipped(INT16X8, f"error: {str(err)[:200]}"))
        return None
    tried = _tried(INT16X8, report, content, passed, max_abs_diff)
    if not passed:
        _restore(report, full)
        report.modes_tried.append(tried)
        return None
    report.modes_tried.append(tried)
    report.int8_mode = INT16X8
    report.float_ops = _convert.float_op_outputs(content)
    return content


def _skipped(mode: str, reason: str, **extra: Any) -> dict:
    """A rung of the ladder that produced no verified file."""
    return {
        "mode": mode,
        **extra,
        "top1_agreement": None,
        "max_abs_diff": None,
        "size_bytes": None,
        "passed": False,
        "reason": reason,
    }


def _restore(report: ExportReport, saved: ExportReport) -> None:
    for f in dataclasses.fields(report):
        setattr(report, f.name, getattr(saved, f.name))


def _selective_search(
    report: ExportReport,
    sm_dir: str,
    check: Any,
    rep_x: np.ndarray,
    allow_select_tf_ops: bool,
    int8_io: bool,
) -> _selective.Search:
    """The debugger-backed search of selective int8 (built once, used by both
    selective rungs); candidates are verified against the full int8 report."""
    converter = _convert.make_converter(
        sm_dir, "int8", rep_x, allow_select_tf_ops, int8_io, for_debugger=True
    )
    debugger, ranked = _selective.make_debugger(converter, rep_x, int8_io)
    full = dataclasses.replace(report, notes=list(report.notes))

    def evaluate(content: bytes) -> tuple[bool, float | None]:
        trial = dataclasses.replace(full, notes=[])
        return check(content, trial), trial.top1_agreement

    return _selective.Search(debugger, ranked, evaluate, int8_io)


def _selective_int8(
    report: ExportReport,
    search: _selective.Search,
    check: Any,
    max_size_bytes: int | None,
    max_abs_diff: float | None,
) -> tuple[bytes | None, _selective.SelectiveResult]:
    """A selective rung: the fewest high-error ops in float until ``check`` passes,
    within ``max_size_bytes`` when given.

    Returns the passing file's bytes (``report`` filled with its numbers) or None
    (``report`` keeps the full int8 numbers), and the search's result.
    """
    result = search.run(max_size_bytes)
    report.selective_tried = [dict(t) for t in result.tried]
    verified = [t for t in result.tried if not t.get("over_budget")]
    last = verified[-1] if verified else {}
    entry = {
        "mode": "selective",
        "size_budget_bytes": max_size_bytes,
        "float_ops": None if result.best is None else len(result.best.float_ops),
        "top1_agreement": last.get("top1_agreement"),
        "max_abs_diff": None,
        "size_bytes": last.get("size_bytes"),
        "passed": result.best is not None,
        "reason": result.stop_reason,
    }
    report.modes_tried.append(entry)
    if result.best is None:
        budget = "" if max_size_bytes is None else f" (budget {max_size_bytes} bytes)"
        report.notes.append(f"selective int8{budget}: {result.stop_reason}")
        return None, result
    check(result.best.content, report)
    entry.update(
        top1_agreement=report.top1_agreement,
        max_abs_diff=report.max_abs_diff,
        size_bytes=len(result.best.content),
    )
    report.int8_mode = "selective"
    report.float_ops = [op.to_dict() for op in result.best.float_ops]
    return result.best.content, result


def _int8_ladder(
    report: ExportReport,
    sm_dir: str,
    check: Any,
    args: tuple,
    size_budget: float | None,
    max_abs_diff: float | None,
) -> bytes | None:
    """The rungs after full int8 failed, first verified file wins: selective int8
    within ``size_budget``, int16x8, selective int8 of any size smaller than the
    float32 file (past that the file would be float32 with extra steps: larger,
    and less exact)."""
    search = _selective_search(report, sm_dir, check, *args)
    budget = None
    if size_budget is not None:
        budget = int(report.full_int8_size_bytes * (1 + size_budget))
    content, result = _selective_int8(report, search, check, budget, max_abs_diff)
    if content is not None:
        return content
    content = _int16x8(report, sm_dir, check, *args, max_abs_diff)
    if content is not None:
        return content
    if not result.over_budget:  # a search without budget would do the same
        report.modes_tried.append(
            _skipped(
                "selective",
                "skipped: the budgeted search was not stopped by its budget",
                size_budget_bytes=None,
                float_ops=None,
            )
        )
        return None
    float32_bytes = len(_convert.convert(sm_dir, "float32", *args[:2], False))
    content, result = _selective_int8(
        report, search, check, float32_bytes - 1, max_abs_diff
    )
    if content is None and result.over_budget:
        report.notes.append(
            "selective int8: no file smaller than the float32 one "
            f"({float32_bytes} bytes) passed verification, and a larger one would "
            "be neither small nor exact; export float16 or float32 instead"
        )
    return content


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
    selective_size_budget: float | None = 0.25,
    input_shape: tuple | None = None,
    preprocessor: Any = None,
    latency_repeats: int = 30,
    num_threads: int | None = None,
    seed: int = 0,
) -> ExportReport:
    """Exports the inference path of a model to TFLite and verifies the file.

    The inference path is written as a SavedModel (``keras.export.ExportArchive``),
    converted with ``tf.lite.TFLiteConverter.from_saved_model``, run with the LiteRT
    interpreter and compared with Keras. ``from_keras_model`` and
    ``model.export(format="litert")`` convert Keras 3 models too, to the same bytes
    (``benchmarks/tflite_routes.py``); this route also folds a ``preprocessor`` and
    gives selective int8 the converter it needs.
    The directory ``path`` gets ``model.tflite`` and ``manifest.json`` only when
    verification passes: everything is written to a temporary sibling first and then
    moved into place.

    With ``quantization="int8"``, a ladder is verified and the first file that
    passes is kept, small and fast first:

    1. full int8;
    2. selective int8 within ``selective_size_budget``: TensorFlow's quantization
       debugger ranks the ops by their int8 error on calibration inputs and the
       fewest top-ranked ops are kept in float until the file passes, unless the
       file would grow past the budget first (still int8 kernels, so int8 speed);
    3. LiteRT's 16x8 mode (int8 weights, so about as small as full int8, and
       int16 activations, which keep far more precision but have no fast LiteRT
       kernels: several times slower than int8 on CPU);
    4. selective int8 of any size below the float32 file's (the last resort: a
       file that passes only with so many ops in float that it is as large as
       float32 is refused, since float32 would be smaller and exact).

    The report and the manifest (``quantization_details``) name the mode
    (``int8_mode``), every rung tried and why it stopped (``modes_tried``, e.g.
    ``"over size budget after 4 float ops: ..."``), the ops in float and the size
    cost against full int8. ``"int8-full"`` refuses instead of going down the
    ladder; ``"int16x8"`` asks for the 16x8 file only.

    Args:
        model: keras.Model, or an object with ``inference_model()`` (e.g. DANN).
            Training-only layers (augmentation, GradientReversal) are left out.
        path: str. Export directory: the folder receives ``model.tflite`` and
            ``manifest.json`` (a path ending in ``.tflite``, ``.keras``, ``.pb``
            and other model-file suffixes is refused). Defaults to
            ``saved_models/<model.name>/tflite-<quantization>``.
        quantization: None (float32), ``"float16"``, ``"dynamic"`` (int8 weights),
            ``"int8"`` (the ladder: full, budgeted selective, 16x8, selective; needs
            ``representative_data``), ``"int8-full"`` (full integer or nothing) or
            ``"int16x8"`` (int8 weights, int16 activations, float32 inputs and
            outputs; needs ``representative_data``). Defaults to None.
        representative_data: array, ``(x, y)`` tuple or ``tf.data.Dataset`` of model
            inputs used to calibrate int8 (``representative_samples`` of them drawn at
            random across the data); also used to verify when ``verify_data`` is
            None. For a domain-adapted model, give inputs of both domains (e.g.
            ``np.concatenate([x_source, x_target])``).
        verify_data: array, ``(x, y)`` or dataset of inputs to verify on (up to 500
            drawn at random). With labels, the report includes both accuracies.
            Defaults to the representative data, else 64 random inputs (a note
            says so).
        verify: bool. Run and compare the file before writing it. Defaults to True.
            Without verification, int8 is full int8 (nothing to select on).
        overwrite: bool. Replace an existing export at ``path``. Defaults to False.
        allow_select_tf_ops: bool. Allow TF Select (Flex) ops. Defaults to False.
        int8_io: bool. With int8, make input and output int8 too (the predictor
            from `load_tflite` converts). Defaults to False (float32 I/O).
        class_names: list of str. Written to the manifest. Defaults to None.
        metrics: dict. Training metrics for the manifest. Defaults to the last epoch
            of ``model.history`` when the model was fit.
        min_agreement: float. Top-1 agreement to reach. Defaults to 0.99 for int8 and
            dynamic, 0.999 for float32/float16.
        max_abs_diff: float. Optional bound on the largest output difference.
        representative_samples: int. Calibration samples used at most. Defaults to 300.
        selective_size_budget: float or None. For ``quantization="int8"``: how much
            larger than the full int8 file the first selective rung may make the
            file, as a fraction (0.25: at most 25% larger). Past it, 16x8 is tried
            before selective int8 of any size. With full int8 about 4x smaller than
            float32, 0.25 keeps a selective file about 3x smaller. None: no budget
            at all, not even the float32 file's size (selective of any size before
            16x8). Defaults to 0.25.
        input_shape: tuple. Input shape without batch axis, for subclassed models or
            with a ``preprocessor``. Defaults to the model's input shape.
        preprocessor: keras Layer or callable applied before the model (folded into
            the file). Defaults to None.
        latency_repeats: int. Timed runs for the latency numbers. Defaults to 30.
        num_threads: int. Interpreter threads for verification. Defaults to LiteRT's.
        seed: int. Seed of the random draw of calibration (``seed``) and
            verification (``seed + 1``) samples. Defaults to 0.

    Returns:
        ExportReport: path, size, agreement, max diff, latency per example, and for
        int8 the mode (full, int16x8 or selective) with the ops kept in float.

    Raises:
        ValueError: int8 without representative data; data of the wrong shape; a
            never-built model; a bad ``quantization``.
        FileExistsError: ``path`` exists and ``overwrite`` is False, or it is a
            non-empty folder that is not an export (no ``manifest.json``).
        UnsupportedOpError: an op TFLite cannot convert (named in the message).
        ExportVerificationError: agreement below the threshold (numbers attached).

    Examples:
    ```python
    import tempfile

    import keras
    import numpy as np

    from keras_transfer.export import export_tflite

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=96)
    x = rng.random((96, 8, 8, 3), "float32") * 0.2
    x[np.arange(96), :, :, y] += 0.8  # the class is the bright channel
    x_train, y_train, x_val, y_val = x[:64], y[:64], x[64:], y[64:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=1, verbose=0)

    report = export_tflite(model, f"{tempfile.mkdtemp()}/digits/tflite-int8",
                           quantization="int8", representative_data=x_train,
                           verify_data=(x_val, y_val))
    print(report.summary())  # says which ops, if any, stayed in float
    assert report.int8_mode in ("full", "int16x8", "selective") and report.verified
    ```
    """
    quantization = _convert.normalize_quantization(quantization)
    # TFLite has no bfloat16/float16 kernels: a mixed-precision model converts as
    # a float32 copy (keras_transfer.precision).
    model = float32_model(model)
    class_names = _pipeline.validate_class_names(class_names)
    _check_options(quantization, representative_data, int8_io, representative_samples)
    _check_budget(selective_size_budget)
    job = _pipeline.begin(
        model,
        path,
        fmt="tflite",
        quantization=quantization,
        leaf=f"tflite-{quantization}",
        overwrite=overwrite,
        min_agreement=min_agreement,
        input_shape=input_shape,
        preprocessor=preprocessor,
    )
    served, report = job.served, job.report
    _pipeline.check_class_names(served, class_names)
    rep = None
    if representative_data is not None:
        rep = _io.sample_array(
            representative_data,
            "representative_data",
            served.shape,
            representative_samples,
            seed=seed,
        )
    rep_x = None if rep is None else rep[0]
    if quantization in CALIBRATED:
        report.int8_mode = "full" if quantization in INT8 else INT16X8
        report.calibration_samples = len(rep_x)
    if quantization == "int8":
        report.selective_size_budget = selective_size_budget
    with tempfile.TemporaryDirectory() as sm_dir:
        write_saved_model(served, sm_dir, extra_outputs=False)
        convert_as = "int8" if quantization in INT8 else quantization
        args = (rep_x, allow_select_tf_ops, int8_io)
        content = _convert.convert(sm_dir, convert_as, *args)
        if quantization == INT16X8:
            report.float_ops = _convert.float_op_outputs(content)
        if verify:
            vx, vy = job.verification_inputs(verify_data, seed + 1, fallback=rep)
            expected = _verify.keras_predict(served.keras_predict, vx)

            def check(candidate: bytes, into: ExportReport) -> bool:
                actual, into.interpreter = _run_content(candidate, vx, num_threads)
                _verify.compare(into, expected, actual, vy)
                return not _verify.problems(into, max_abs_diff)

            passed = check(content, report)
            if quantization in CALIBRATED:
                report.modes_tried.append(
                    _tried(report.int8_mode, report, content, passed, max_abs_diff)
                )
            if quantization in INT8:
                report.full_int8_agreement = report.top1_agreement
                report.full_int8_size_bytes = len(content)
            if not passed and quantization == "int8":
                # The ladder: selective within budget -> 16x8 -> selective.
                better = _int8_ladder(
                    report, sm_dir, check, args, selective_size_budget, max_abs_diff
                )
                content = better if better is not None else content

    def write(tmp: Path) -> dict[str, Any]:
        file = tmp / MODEL_FILE
        file.write_bytes(content)
        report.size_bytes = file.stat().st_size
        if verify:
            _verify.enforce(report, max_abs_diff, _refusal_hint(quantization))
            _time_file(report, served, file, vx, latency_repeats, num_threads)
        return {
            "model_file": MODEL_FILE,
            "converter": _convert.CONVERTER,
            "select_tf_ops": allow_select_tf_ops,
            **_convert.io_specs(file),
            "quantization_details": report.quantization_dict(),
        }

    return job.write(write, metrics=metrics, class_names=class_names)


def _check_options(
    quantization: str,
    representative_data: Any,
    int8_io: bool,
    representative_samples: Any,
) -> None:
    """Refuses option combinations that cannot work, before any model work."""
    if quantization in CALIBRATED and representative_data is None:
        raise ValueError(
            f"quantization={quantization!r} needs representative_data (100-500 model inputs "
            "as an array or tf.data.Dataset) to calibrate activation ranges. Received: "
            "representative_data=None. Use quantization='dynamic' to quantize weights "
            "only without data."
        )
    if int8_io and quantization not in INT8:
        raise ValueError(
            "int8_io=True needs quantization='int8' or 'int8-full'. Received: "
            f"quantization={quantization!r}"
        )
    if not isinstance(representative_samples, int) or representative_samples < 1:
        raise ValueError(
            "Expected representative_samples to be an int >= 1. Received: "
            f"representative_samples={representative_samples!r}"
        )


def _check_budget(selective_size_budget: Any) -> None:
    ok = selective_size_budget is None or (
        isinstance(selective_size_budget, (int, float))
        and not isinstance(selective_size_budget, bool)
        and selective_size_budget >= 0
    )
    if not ok:
        raise ValueError(
            "Expected selective_size_budget to be a number >= 0 (0.25: the "
            "selective int8 file at most 25% larger than full int8) or None (no "
            f"budget). Received: selective_size_budget={selective_size_budget!r}"
        )


def _refusal_hint(quantization: str) -> str | None:
    if quantization == "int8-full":
        return (
            "Full int8 was required (quantization='int8-full'); use "
            "quantization='int8' to keep the ops with the largest int8 error in "
            "float (selective int8), or 'dynamic' for int8 weights only."
        )
    if quantization == INT16X8:
        return (
            "16x8 (int8 weights, int16 activations) was required "
            "(quantization='int16x8'); use quantization='int8' to also try selective "
            "int8 (the ops with the largest int8 error kept in float), or 'dynamic' "
            "or 'float16'."
        )
    if quantization == "int8":
        return (
            "Neither full int8, selective int8 (within the size budget), 16x8 nor "
            "selective int8 smaller than the float32 file reached it "
            "(report.modes_tried says why each stopped). Try quantization='dynamic' "
            "(int8 weights only) or "
            "'float16', more representative_data like the inputs the model will "
            "see, or pass verify=False to export anyway."
        )
    return None
