"""The result of an export (`ExportReport`) and the specific errors export raises."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExportReport:
    """What was written and how well it matches the Keras model it came from.

    Attributes:
        path: str. The export directory.
        format: str. ``"tflite"`` or ``"saved_model"``.
        quantization: str. ``"float32"``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        size_bytes: int. Size of the model file (``model.tflite``) or of the whole
            SavedModel directory.
        num_samples: int. How many inputs verification compared.
        top1_agreement: float or None. Fraction of inputs whose top-1 class is the same
            in the exported model and in Keras (threshold at 0.5 for one-unit outputs).
        max_abs_diff: float or None. Largest absolute difference of the outputs.
        mean_abs_diff: float or None. Mean absolute difference of the outputs.
        latency_ms: float or None. Median single-example latency of the exported model
            (LiteRT interpreter or SavedModel signature), in milliseconds.
        keras_latency_ms: float or None. Median single-example latency of Keras
            ``predict_on_batch`` measured in the same run.
        keras_accuracy: float or None. Accuracy of the Keras model on the verification
            labels, when labels were given.
        export_accuracy: float or None. Accuracy of the exported model on those labels.
        threshold: float. The agreement the export had to reach.
        verified: bool. Whether verification ran (``False`` with ``verify=False``).
        verify_source: str. Where the verification inputs came from:
            ``"verify_data"``, ``"representative_data"``, ``"random"`` or ``"none"``.
        interpreter: str. Which runtime ran the exported file.
        manifest_path: str. Path of ``manifest.json``.
        stripped_layers: list of str. Training-only layers left out of the export.
        notes: list of str. Anything the user should know (e.g. random inputs used).
    """

    path: str
    format: str
    quantization: str
    size_bytes: int = 0
    num_samples: int = 0
    top1_agreement: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    latency_ms: float | None = None
    keras_latency_ms: float | None = None
    keras_accuracy: float | None = None
    export_accuracy: float | None = None
    threshold: float = 0.999
    verified: bool = False
    verify_source: str = "none"
    interpreter: str = ""
    manifest_path: str = ""
    stripped_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def latency_ratio(self) -> float | None:
        """Exported latency divided by Keras latency (lower is better)."""
        if not self.latency_ms or not self.keras_latency_ms:
            return None
        return self.latency_ms / self.keras_latency_ms

    def to_dict(self) -> dict[str, Any]:
        """Returns the report as a JSON-serializable dict."""
        out = dataclasses.asdict(self)
        out["latency_ratio"] = self.latency_ratio
        return out

    def verification_dict(self) -> dict[str, Any]:
        """Returns only the verification numbers (what goes into the manifest)."""
        keys = (
            "verified",
            "verify_source",
            "num_samples",
            "top1_agreement",
            "max_abs_diff",
            "mean_abs_diff",
            "threshold",
            "latency_ms",
            "keras_latency_ms",
            "keras_accuracy",
            "export_accuracy",
            "interpreter",
        )
        return {k: getattr(self, k) for k in keys}

    def summary(self) -> str:
        """Returns a short human-readable summary of the export."""

        def fmt(value: float | None, spec: str) -> str:
            return "n/a" if value is None else format(value, spec)

        lines = [
            f"Exported {self.format} ({self.quantization}) to {self.path}",
            f"  size: {self.size_bytes / 1024:.1f} KiB",
        ]
        if self.verified:
            lines += [
                f"  verified on {self.num_samples} inputs ({self.verify_source}): "
                f"top-1 agreement {fmt(self.top1_agreement, '.4f')} "
                f"(threshold {self.threshold}), max |diff| "
                f"{fmt(self.max_abs_diff, '.3g')}",
                f"  latency per example: {fmt(self.latency_ms, '.3f')} ms "
                f"({self.interpreter}) vs Keras {fmt(self.keras_latency_ms, '.3f')} ms",
            ]
            if self.keras_accuracy is not None:
                lines.append(
                    f"  accuracy: Keras {self.keras_accuracy:.4f}, "
                    f"export {fmt(self.export_accuracy, '.4f')}"
                )
        else:
            lines.append("  NOT verified (verify=False)")
        if self.stripped_layers:
            lines.append(f"  training-only layers left out: {self.stripped_layers}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class ExportVerificationError(RuntimeError):
    """The exported model does not match the Keras model well enough.

    Attributes:
        report: ExportReport. The numbers that failed; nothing was written in place.
    """

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


class UnsupportedOpError(ValueError):
    """TFLite cannot convert some ops of the model.

    Attributes:
        ops: list of str. The TensorFlow op names the converter refused.
    """

    def __init__(self, message: str, ops: list[str]):
        super().__init__(message)
        self.ops = ops


class CorruptedExportError(ValueError):
    """An exported file does not match its manifest's sha256, or is broken."""
