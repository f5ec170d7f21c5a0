"""The steps every export format shares: start, verification inputs, verified write.

`export_tflite` and `export_saved_model` differ only in what they write and how they
run it. Both:

1. `begin`: resolve the inference path (`prepare`), the default path, refuse an
   existing path without ``overwrite``, and open an `ExportReport`; it returns an
   `Export` that carries them;
2. `Export.verification_inputs`: ``verify_data`` (up to 500 drawn at random), else a
   fallback (TFLite: the calibration samples), else random inputs with a note;
3. `Export.write`: write into a temporary sibling directory, let the format run and
   compare its files, then write ``manifest.json`` (the shared fields of
   `base_manifest` plus the format's own) and move the directory into place.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.export import _io, _verify
from keras_transfer.export._serving import Served, prepare
from keras_transfer.export.report import ExportReport

VERIFY_SAMPLES = 500  # verify_data inputs drawn at most


def validate_class_names(class_names: Any) -> list[str] | None:
    """Returns class names as a list of str, or None."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
        raise ValueError(
            "Expected class_names to be a list of strings. Received: "
            f"class_names={class_names!r}"
        )
    return list(class_names)


def check_class_names(served: Served, class_names: list[str] | None) -> None:
    """Refuses class names that do not match the model's classes (one name per
    output unit; two for a one-unit sigmoid output), before anything is written:
    an export that verified would otherwise fail when an app maps a class id."""
    if class_names is None:
        return
    try:
        units = served.model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        return  # a subclassed model without symbolic outputs: not known here
    if units is None:
        return
    expected = 2 if units == 1 else int(units)
    if len(class_names) != expected:
        raise ValueError(
            f"Expected one class name per class of the model: {expected} (its output "
            f"has {units} unit{'s' if units != 1 else ''}"
            + (", a binary sigmoid" if units == 1 else "")
            + f"). Received: {len(class_names)} class names {class_names!r}"
        )


def training_metrics(model: Any, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """User metrics, else the last epoch of ``model.history`` when the model was fit."""
    if metrics is not None:
        return {k: float(v) if np.isscalar(v) else v for k, v in metrics.items()}
    history = getattr(getattr(model, "history", None), "history", None)
    if not history:
        return {}
    return {k: float(v[-1]) for k, v in history.items() if len(v)}


def base_manifest(served: Served, fmt: str, quantization: str, **extra: Any) -> dict:
    """The manifest fields every format shares."""
    return {
        "format": fmt,
        "quantization": quantization,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "source_model": getattr(served.model, "name", None),
        "raw_input": {"shape": [None, *served.shape], "dtype": served.raw_dtype},
        "stripped_layers": served.stripped,
        "notes": served.notes,
        **extra,
    }


def random_inputs(served: Served, n: int = 64, seed: int = 0) -> np.ndarray:
    """Random inputs of the served shape (used only when no data was given)."""
    if any(d is None for d in served.shape):
        raise ValueError(
            f"The model input shape {served.shape} has unknown dimensions; pass "
            "verify_data so verification can run, or verify=False."
        )
    rng = np.random.default_rng(seed)
    if served.raw_dtype == "uint8":
        return rng.integers(0, 256, size=(n, *served.shape)).astype("uint8")
    return rng.uniform(0.0, 1.0, size=(n, *served.shape)).astype("float32")


@dataclass
class Export:
    """One export in progress: the inference path, the target and its report."""

    served: Served
    path: str | os.PathLike
    report: ExportReport
    model: Any  # what the user passed (for its training history)
    overwrite: bool

    def verification_inputs(
        self,
        verify_data: Any,
        seed: int,
        fallback: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x, y)`` to verify on: ``verify_data``, else ``fallback``, else random.

        ``verify_data`` gives up to `VERIFY_SAMPLES` inputs drawn at random with
        ``seed``; ``fallback`` (the calibration samples) is recorded as
        ``representative_data``; random inputs add a note. ``report.verify_source``
        says which.
        """
        report = self.report
        if verify_data is not None:
            report.verify_source = "verify_data"
            shape = self.served.shape
            return _io.sample_array(
                verify_data, "verify_data", shape, VERIFY_SAMPLES, seed=seed
            )
        if fallback is not None:
            report.verify_source = "representative_data"
            return fallback
        report.verify_source = "random"
        report.notes.append(
            "verified on random inputs; pass verify_data for real numbers"
        )
        return random_inputs(self.served), None

    def write(
        self,
        write: Callable[[Path], dict[str, Any]],
        *,
        metrics: dict[str, Any] | None,
        class_names: list[str] | None,
    ) -> ExportReport:
        """Writes the export atomically, with ``manifest.json``; returns the report.

        Args:
            write: callable. Writes the format's files into the temporary directory
                it is given, runs and compares them (raising
                `ExportVerificationError` when they do not match, so nothing reaches
                ``path``), and returns the format's own manifest fields.
            metrics: dict or None. Training metrics for the manifest.
            class_names: list of str or None. Written to the manifest.
        """
        report = self.report
        with _io.atomic_directory(self.path, self.overwrite) as tmp:
            fields = write(tmp)
            manifest = base_manifest(
                self.served,
                report.format,
                report.quantization,
                **fields,
                class_names=class_names,
                verification=report.verification_dict(),
                training_metrics=training_metrics(self.model, metrics),
            )
            _io.write_manifest(tmp, manifest)
        report.manifest_path = str(Path(self.path) / _io.MANIFEST)
        return report


def begin(
    model: Any,
    path: str | os.PathLike | None,
    *,
    fmt: str,
    quantization: str,
    leaf: str,
    overwrite: bool,
    min_agreement: float | None,
    **prepare_kwargs: Any,
) -> Export:
    """Resolves the inference path and the target, and opens the report.

    Args:
        model: keras.Model or an object with ``inference_model()``.
        path: str, PathLike or None (``saved_models/<model name>/<leaf>``).
        fmt: str. ``"tflite"`` or ``"saved_model"``.
        quantization: str. Normalized quantization name.
        leaf: str. Folder name of the default path.
        overwrite: bool. Whether an existing ``path`` may be replaced.
        min_agreement: float or None. Agreement threshold (else the default).
        **prepare_kwargs: passed to `prepare` (input shape/dtype, preprocessor).

    Raises:
        ValueError: never-built model, several inputs/outputs (see `prepare`).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    served = prepare(model, **prepare_kwargs)
    if path is None:
        path = _io.default_path(served.model, leaf)
    _io.check_target(path, overwrite)
    report = ExportReport(
        path=str(path),
        format=fmt,
        quantization=quantization,
        threshold=_verify.threshold_for(quantization, min_agreement),
        stripped_layers=list(served.stripped),
        notes=list(served.notes),
    )
    return Export(served, path, report, model, overwrite)
