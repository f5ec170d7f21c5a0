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
        quantization: str. ``"float32"``, ``"float16"``, ``"dynamic"``, ``"int8"``
            (the ladder: full int8, selective within a size budget, 16x8, selective of
            any size), ``"int8-full"`` (full int8 only)
            or ``"int16x8"`` (16x8 only).
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
        disagreement_margin: float or None. Among the inputs whose top-1 class
            differs, the largest margin of the Keras model's top class over its
            runner-up (probabilities; None when every input agrees). Small values
            mean the disagreements are near-ties of a low-confidence model.
        threshold: float. The agreement the export had to reach.
        verified: bool. Whether verification ran (``False`` with ``verify=False``).
        verify_source: str. Where the verification inputs came from:
            ``"verify_data"``, ``"representative_data"``, ``"random"`` or ``"none"``.
        interpreter: str. Which runtime ran the exported file.
        manifest_path: str. Path of ``manifest.json``.
        stripped_layers: list of str. Training-only layers left out of the export.
        notes: list of str. Anything the user should know (e.g. random inputs used).
        int8_mode: str or None. For int8 and int16x8: ``"full"`` (every op int8),
            ``"int16x8"`` (LiteRT's 16x8 mode: int8 weights, int16 activations) or
            ``"selective"`` (the ops in ``float_ops`` kept in float).
        float_ops: list of dict. Ops kept in float. Selective int8: the ops of
            largest error first, ``tensor`` (op output name), ``op`` (TFLite op)
            and ``rmse_over_scale`` (their error in int8 steps in the debug run).
            int16x8: the ops LiteRT has no 16x8 kernel for (``tensor``, ``op``),
            usually none.
        full_int8_agreement: float or None. Top-1 agreement the full int8 file had
            (it missed the threshold when ``int8_mode`` is ``"selective"``).
        full_int8_size_bytes: int or None. Size of the full int8 file.
        selective_tried: list of dict. Every selective candidate that was measured:
            ``float_ops`` (how many), ``top1_agreement``, ``size_bytes``, ``passed``.
        modes_tried: list of dict. The rungs of the int8 ladder that were tried,
            in order (``"full"``, ``"selective"`` within ``size_budget_bytes``,
            ``"int16x8"``, ``"selective"`` with no budget): ``mode``,
            ``top1_agreement``, ``max_abs_diff``, ``size_bytes``, ``passed`` and
            ``reason`` (why the rung stopped, e.g. ``"over size budget after 4
            float ops: ..."``); selective rungs add ``size_budget_bytes`` (None:
            no budget) and ``float_ops`` (how many, when one passed).
        selective_size_budget: float or None. For ``"int8"``: how much larger than
            full int8 the budgeted selective rung could make the file (a fraction).
        calibration_samples: int. Inputs that calibrated int8 (0 otherwise).
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
    disagreement_margin: float | None = None
    threshold: float = 0.999
    verified: bool = False
    verify_source: str = "none"
    interpreter: str = ""
    manifest_path: str = ""
    stripped_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    int8_mode: str | None = None
    float_ops: list[dict[str, Any]] = field(default_factory=list)
    full_int8_agreement: float | None = None
    full_int8_size_bytes: int | None = None
    selective_tried: list[dict[str, Any]] = field(default_factory=list)
    modes_tried: list[dict[str, Any]] = field(default_factory=list)
    selective_size_budget: float | None = None
    calibration_samples: int = 0

    @property
    def size_cost_bytes(self) -> int | None:
        """Bytes the chosen file adds to the full int8 file that failed (selective or
        int16x8 after full int8; None otherwise)."""
        if self.int8_mode in (None, "full") or self.full_int8_size_bytes is None:
            return None
        return self.size_bytes - self.full_int8_size_bytes

    def quantization_dict(self) -> dict[str, Any]:
        """The int8 details that go into the manifest (empty for other formats)."""
        if self.int8_mode is None:
            return {}
        return {
            "int8_mode": self.int8_mode,
            "calibration_samples": self.calibration_samples,
            "float_ops": self.float_ops,
            "full_int8_agreement": self.full_int8_agreement,
            "full_int8_size_bytes": self.full_int8_size_bytes,
            "size_cost_bytes": self.size_cost_bytes,
            "selective_tried": self.selective_tried,
            "modes_tried": self.modes_tried,
            "selective_size_budget": self.selective_size_budget,
        }

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
        out["size_cost_bytes"] = self.size_cost_bytes
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
            "disagreement_margin",
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
        if self.int8_mode == "selective":
            ops = ", ".join(o["op"] for o in self.float_ops)
            cost = self.size_cost_bytes or 0
            full = self.full_int8_size_bytes or 1
            lines.append(
                f"  selective int8: {len(self.float_ops)} op(s) kept in float ({ops}),"
                f" {cost / 1024:+.1f} KiB ({100 * cost / full:+.1f}%) vs full int8, "
                f"whose agreement was {fmt(self.full_int8_agreement, '.4f')}"
            )
        elif self.int8_mode == "int16x8":
            line = "  int16x8: int8 weights, int16 activations"
            if self.float_ops:
                line += f"; {len(self.float_ops)} op(s) without a 16x8 kernel in float"
                line += f" ({_op_counts(self.float_ops)})"
            if self.full_int8_agreement is not None:
                cost = self.size_cost_bytes or 0
                line += (
                    f"; {cost / 1024:+.1f} KiB vs full int8, whose agreement was "
                    f"{fmt(self.full_int8_agreement, '.4f')}"
                )
            lines.append(line)
        elif self.int8_mode == "full":
            lines.append("  full int8 (every op quantized)")
        if len(self.modes_tried) > 1:
            lines.append(
                "  int8 ladder: " + "; ".join(_rung(m) for m in self.modes_tried)
            )
        if self.stripped_layers:
            lines.append(f"  training-only layers left out: {self.stripped_layers}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _rung(mode: dict[str, Any]) -> str:
    """``"selective <= 38.2 KiB: over size budget after ..."``: one rung, short."""
    name = mode["mode"]
    if name == "selective":
        budget = mode.get("size_budget_bytes")
        name += " (no budget)" if budget is None else f" <= {budget / 1024:.1f} KiB"
    return f"{name}: {mode.get('reason', 'passed' if mode['passed'] else 'failed')}"


def _op_counts(ops: list[dict[str, Any]]) -> str:
    """``"HARD_SWISH x18, MEAN"``: op types in first-seen order with their counts."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op"]] = counts.get(op["op"], 0) + 1
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in counts.items())


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
