"""Selective int8: keep the ops with the largest quantization error in float.

When full int8 misses the agreement threshold, TensorFlow's quantization debugger
(`tf.lite.experimental.QuantizationDebugger`) runs the calibrated model in debug mode
on calibration inputs and measures, for every quantized op output, the error against
the float op (layer statistics). Ops are ranked by RMSE divided by the int8 scale of
their output (how many quantization steps the error spans, the ranking of TF's
debugger guide), and the top-k are denylisted (kept in float) with k = 1, 2, 4, ...
until the file reaches the threshold; a bisection between the last failing and the
first passing k then finds the fewest ops. With a size budget (the ``"int8"`` ladder's
first selective rung), a candidate larger than the budget ends the search instead
of being verified.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import tf

DEBUG_SAMPLES = 64  # calibration inputs the debugger runs to rank ops


@dataclass
class RankedOp:
    """One quantized op output and its error in the debug run."""

    tensor: str
    op: str
    rmse_over_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "op": self.op,
            "rmse_over_scale": self.rmse_over_scale,
        }


@dataclass
class Candidate:
    """A converted file and whether it passed."""

    float_ops: list[RankedOp]
    content: bytes
    passed: bool


@dataclass
class SelectiveResult:
    """What the search found: the chosen file (None when nothing passed)."""

    ranked: list[RankedOp]
    tried: list[dict[str, Any]] = field(default_factory=list)
    best: Candidate | None = None
    stop_reason: str = ""
    over_budget: bool = False


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silences the quantizer's C++ lines on stderr ("fully_quantize: 0, ...", one
    per candidate); failures still surface as Python exceptions."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured stderr without a fd
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            try:
                yield
            finally:
                _flush_c_stdio()
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _flush_c_stdio() -> None:
    """Flushes C stdio buffers (a pipe's stdout is block-buffered)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc symbol table (e.g. Windows)
        pass


def rank_ops(debugger: Any) -> list[RankedOp]:
    """Runs the debugger and ranks quantized op outputs, largest error first."""
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    ranked = []
    for row in csv.DictReader(buffer):
        scale = float(row["scale"] or 0.0)
        rmse = float(row["mean_squared_error"] or 0.0) ** 0.5
        score = rmse / scale if scale > 0 else 0.0
        ranked.append(RankedOp(row["tensor_name"], row["op_name"], float(score)))
    ranked.sort(key=lambda r: -r.rmse_over_scale)
    return ranked


def make_debugger(
    converter: Any, samples: np.ndarray, fully_quantize: bool
) -> tuple[Any, list[RankedOp]]:
    """Builds the debugger on a configured int8 ``converter``; ranks the ops."""
    x = samples[:DEBUG_SAMPLES].astype("float32")

    def dataset():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    options = tf.lite.experimental.QuantizationDebugOptions(
        fully_quantize=fully_quantize
    )
    with warnings.catch_warnings(), quiet_native_stderr():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=dataset, debug_options=options
        )
        ranked = rank_ops(debugger)
    return debugger, ranked


def quantized_with_denylist(
    debugger: Any, nodes: list[str], fully_quantize: bool
) -> bytes:
    """The non-debug int8 model with ``nodes`` (op output tensors) kept in float."""
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=list(nodes), fully_quantize=fully_quantize
    )
    with warnings.catch_warnings(), quiet_native_stderr():
        warnings.simplefilter("ignore")
        debugger.options = options
        return debugger.get_nondebug_quantized_model()


class Search:
    """Finds the fewest top-ranked ops to keep in float so that ``evaluate`` passes,
    optionally within a size budget.

    Candidates (converted files) and their verification are cached by the number
    of float ops ``k``, so a later search without a budget reuses what a budgeted
    one converted. A candidate over the budget is not verified.

    Args:
        debugger: QuantizationDebugger built from the int8 converter.
        ranked: ops ranked by error, largest first.
        evaluate: ``content -> (passed, top-1 agreement)``.
        fully_quantize: int8 inputs and outputs.
    """

    def __init__(
        self,
        debugger: Any,
        ranked: list[RankedOp],
        evaluate: Callable[[bytes], tuple[bool, float | None]],
        fully_quantize: bool,
    ):
        self.debugger = debugger
        self.ranked = ranked
        self.evaluate = evaluate
        self.fully_quantize = fully_quantize
        self.tried: list[dict[str, Any]] = []
        self._contents: dict[int, bytes] = {}
        self._verdicts: dict[int, bool] = {}

    @property
    def limit(self) -> int:
        """The most ops in float: the debug model needs one quantized op left."""
        return max(len(self.ranked) - 1, 0)

    def _content(self, k: int) -> bytes:
        if k not in self._contents:
            ops = [o.tensor for o in self.ranked[:k]]
            self._contents[k] = quantized_with_denylist(
                self.debugger, ops, self.fully_quantize
            )
        return self._contents[k]

    def _status(self, k: int, max_size_bytes: int | None) -> str:
        """``"pass"``, ``"fail"`` (verification) or ``"over"`` (the budget)."""
        content = self._content(k)
        if max_size_bytes is not None and len(content) > max_size_bytes:
            if not any(t["float_ops"] == k for t in self.tried):
                self.tried.append(
                    {
                        "float_ops": k,
                        "top1_agreement": None,
                        "size_bytes": len(content),
                        "passed": False,
                        "over_budget": True,
                    }
                )
            return "over"
        if k not in self._verdicts:
            passed, agreement = self.evaluate(content)
            self._verdicts[k] = passed
            self.tried[:] = [t for t in self.tried if t["float_ops"] != k]
            self.tried.append(
                {
                    "float_ops": k,
                    "top1_agreement": agreement,
                    "size_bytes": len(content),
                    "passed": passed,
                    "over_budget": False,
                }
            )
        return "pass" if self._verdicts[k] else "fail"

    def run(self, max_size_bytes: int | None = None) -> SelectiveResult:
        """Searches k = 1, 2, 4, ... then bisects to the fewest passing ops.

        Along k, files fail verification, then pass, then exceed the budget (more
        ops in float: closer to float, and larger); the doubling stops at the
        first k that does not fail and the bisection finds the first of them.

        Args:
            max_size_bytes: int or None. Candidates larger than this are refused
                without verification. None: no budget.

        Returns:
            SelectiveResult: ``best`` is the passing candidate with the fewest float
            ops (None when none passed); ``stop_reason`` says why the search ended.
        """
        result = SelectiveResult(ranked=self.ranked, tried=self.tried)
        limit, n = self.limit, len(self.ranked)
        low, k = 0, 1  # 0 = full int8, known to fail
        while k <= limit and self._status(k, max_size_bytes) == "fail":
            low, k = k, min(2 * k, limit) if k < limit else limit + 1
        if k > limit:
            result.stop_reason = (
                f"no file passed with up to {limit} of {n} ops kept in float"
            )
            return result
        high = k  # does not fail: passes or is over the budget
        while high - low > 1:
            mid = (low + high) // 2
            if self._status(mid, max_size_bytes) == "fail":
                low = mid
            else:
                high = mid
        if self._status(high, max_size_bytes) == "pass":
            result.best = Candidate(
                self.ranked[:high], self._content(high), passed=True
            )
            result.stop_reason = f"passed with {high} of {n} ops kept in float"
            return result
        result.over_budget = True
        size = len(self._content(high))
        result.stop_reason = (
            f"over size budget after {low} float ops: {high} in float make "
            f"{size} bytes > {max_size_bytes}"
        )
        if low:
            result.stop_reason += f"; {low} failed verification"
        return result
