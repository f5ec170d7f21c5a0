"""What building a trial's model says, said once per search.

Every trial of a search builds a new model from the same backbone, so everything the
builders say about that backbone (a random backbone frozen at depth 0, BatchNorm
layers that have never been trained and get momentum 0.9, ...) came out once per
trial: ten trials, ten copies of the same paragraph between KerasTuner's trial
reports. `said_once` lets each distinct log record, warning and printed line of a
build through the first time only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

_LOGGER = "keras_transfer"


class _DropRepeats(logging.Filter):
    def __init__(self, seen: set) -> None:
        super().__init__()
        self.seen = seen

    def filter(self, record: logging.LogRecord) -> bool:
        key = ("log", record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@contextlib.contextmanager
def said_once(seen: set) -> Iterator[None]:
    """Inside the block, what was already said (recorded in ``seen``) is dropped.

    Log records of the ``keras_transfer`` logger, warnings and lines printed to
    stdout inside the block pass through unless the same one passed in an earlier
    block with the same ``seen`` set; the new ones are added to it. Warnings and
    printed lines come out when the block ends (also on an error).

    Args:
        seen: set. Shared by the blocks whose repeats should be dropped (one per
            search: `TransferHyperModel` keeps it).

    Examples:
    ```python
    import contextlib, io, logging
    from keras_transfer.tuning.repeats import said_once
    seen, out = set(), io.StringIO()
    with contextlib.redirect_stdout(out):
        for _ in range(3):
            with said_once(seen):
                print("[build] the same line")
    assert out.getvalue() == "[build] the same line\\n"
    ```
    """
    logger = logging.getLogger(_LOGGER)
    drop = _DropRepeats(seen)
    logger.addFilter(drop)
    printed = io.StringIO()
    caught: list = []
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(printed),
        ):
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeFilter(drop)
        for line in printed.getvalue().splitlines():
            if ("print", line) not in seen:
                seen.add(("print", line))
                print(line)
        for w in caught:
            key = ("warning", w.category, str(w.message))
            if key not in seen:
                seen.add(key)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


__all__ = ["said_once"]
