"""A progress display for work outside `model.fit` (trials, export checks, data prep).

On a terminal it redraws one line (``label [#####.....] 5/10 0:03``); elsewhere (CI
logs, files, pipes) it prints plain lines, at most one per `min_interval` seconds plus
the last, so logs stay readable.

Examples:
```python
import io
from keras_transfer.progress import Progress, track
out = io.StringIO()
for _ in track(range(3), "trials", stream=out):
    pass
assert "trials 3/3" in out.getvalue()
```
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

__all__ = ["Progress", "track"]

T = TypeVar("T")


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts steps of a long task and shows them, as a bar or as plain lines.

    Args:
        total: int or None. Number of steps, when known.
        label: str. What is being done. Defaults to "working".
        stream: file-like or None. Where to write. Defaults to `sys.stderr`.
        tty: bool or None. Force the terminal (True) or plain-line (False) display;
            None asks `stream.isatty()`.
        min_interval: float. Smallest gap in seconds between plain lines (the last
            step is always printed). Defaults to 0.0.
        width: int. Characters of the bar. Defaults to 30.

    Examples:
    ```python
    import io
    from keras_transfer.progress import Progress
    out = io.StringIO()
    with Progress(2, "export", stream=out) as bar:
        bar.update(note="float32")
        bar.update(note="int8")
    assert "export 2/2" in out.getvalue()
    ```
    """

    def __init__(
        self,
        total: int | None = None,
        label: str = "working",
        *,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        min_interval: float = 0.0,
        width: int = 30,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"Expected total >= 0 or None. Received: total={total}")
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.min_interval = min_interval
        self.width = width
        self.count = 0
        self.start = time.monotonic()
        self._last_print = -float("inf")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _line(self, note: str) -> str:
        elapsed = _fmt_time(time.monotonic() - self.start)
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = ""
            if self.tty:
                filled = int(round(done * self.width))
                bar = " [" + "#" * filled + "." * (self.width - filled) + "]"
            text = f"{self.label}{bar} {self.count}/{self.total} ({done:.0%}) {elapsed}"
        else:
            text = f"{self.label} {self.count} {elapsed}"
        return f"{text} {note}".rstrip()

    def update(self, n: int = 1, note: str = "") -> None:
        """Advances by `n` steps and shows the new state; `note` adds a short remark."""
        self.count += n
        now = time.monotonic()
        last = self.total is not None and self.count >= self.total
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line(note))
        elif last or now - self._last_print >= self.min_interval:
            self.stream.write(self._line(note) + "\n")
            self._last_print = now
        self.stream.flush()

    def write(self, message: str) -> None:
        """Prints a message line without breaking the bar."""
        if self.tty:
            self.stream.write("\r\x1b[K" + message + "\n" + self._line(""))
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Ends the display (a newline on terminals)."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def track(
    iterable: Iterable[T],
    label: str = "working",
    *,
    total: int | None = None,
    **kwargs: Any,
) -> Iterator[T]:
    """Yields the items of `iterable` while showing a `Progress` display.

    Args:
        iterable: the items.
        label: str. What is being done.
        total: int or None. Number of items; defaults to `len(iterable)` when defined.
        **kwargs: passed to `Progress` (stream, tty, min_interval, width).
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, label, **kwargs) as bar:
        for item in iterable:
            yield item
            bar.update()
