"""A `tf.data.Dataset` read into an indexable array, spilled to disk when large.

`keras_transfer.adapt` needs indexable inputs in a fixed order (a held-out
split of the source, predictions on the target in order, joins). A dataset is
read once; while it fits in `SPILL_BYTES` it becomes a NumPy array as before,
and past that it is written to a file in a temporary folder and returned as a
`SpilledArray`: a lazy array over that file that `adapt` streams one batch at
a time, as it streams `ImageFiles`. The folder is removed when the last array
reading from it is garbage collected (or when Python exits).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.data.lazy import JoinedArray, LazyArray, stream_rows

#: A dataset read for `adapt` past this many bytes of inputs goes to disk.
SPILL_BYTES = 512 << 20
#: Bytes asked of one read call.
READ_CHUNK = 1 << 28

_LOG = logging.getLogger("keras_transfer")


class _Spill:
    """One spilled file of ``shape[0]`` rows, read with `os.pread`.

    Not a memory map: pages of a mapped file count in the process's resident
    memory while mapped, so a map read end to end every epoch looks (and, until
    the kernel reclaims them, is) as large as the arrays it replaced. Plain reads
    go through the page cache only. The folder goes when this object does.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.row_bytes = int(np.prod(shape[1:], dtype="int64")) * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._lock = threading.Lock()
        self._cleanup = weakref.finalize(self, _remove, self._fd, str(path.parent))

    def __len__(self) -> int:
        return self.shape[0]

    def _pread(self, size: int, offset: int) -> bytes:
        """``size`` bytes from ``offset``; a read may return less (Linux: under
        2 GiB a call), so it reads in chunks until done or the file ends."""
        parts, done = [], 0
        while done < size:
            want = min(size - done, READ_CHUNK)
            if hasattr(os, "pread"):
                part = os.pread(self._fd, want, offset + done)
            else:  # pragma: no cover - Windows: no positional read
                with self._lock:
                    os.lseek(self._fd, offset + done, os.SEEK_SET)
                    part = os.read(self._fd, want)
            if not part:
                break
            parts.append(part)
            done += len(part)
        return b"".join(parts)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (local indices, any order, repeats allowed)."""
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        got = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        flat = got.reshape(len(rows), -1).view(np.uint8)
        # one read per run of consecutive rows (a whole batch when unshuffled)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if not len(run):
                continue
            size = len(run) * self.row_bytes
            data = self._pread(size, int(ordered[run[0]]) * self.row_bytes)
            if len(data) != size:
                raise OSError(f"{self.path} is shorter than its {len(self)} rows")
            flat[run[0] : run[-1] + 1] = np.frombuffer(data, np.uint8).reshape(
                len(run), self.row_bytes
            )
        out = np.empty_like(got)
        out[order] = got
        return out


def _remove(fd: int, folder: str) -> None:
    os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)


class SpilledArray(LazyArray):
    """Rows of one or more spilled files that behave like a NumPy array.

    Nothing is read until it is read: `len`, `shape`, slices and index arrays
    are free (they return `SpilledArray`s of the chosen rows), an int index reads
    one row, `np.asarray` reads every chosen row, and `dataset()` streams them
    (`lazy.READ_ROWS` at a time). `SpilledArray.concatenate` joins arrays of one
    dtype and row shape without reading them. Made by `read_dataset`.

    Args:
        spills: the `_Spill` files the rows come from.
        rows: int64 array. Each row as an index into the spills' rows laid end
            to end.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import tf
    from keras_transfer.data.spill import SpilledArray, read_dataset
    ds = tf.data.Dataset.from_tensor_slices(np.arange(12.0).reshape(6, 2))
    x, _ = read_dataset(ds.batch(4), "target", spill_bytes=0)
    assert isinstance(x, SpilledArray) and x.shape == (6, 2)
    np.testing.assert_array_equal(np.asarray(x[[5, 0]]), [[10, 11], [0, 1]])
    ```
    """

    def __init__(self, spills: Sequence[_Spill], rows: np.ndarray) -> None:
        self._spills = tuple(spills)
        first = self._spills[0]
        self.dtype = first.dtype
        self._item = tuple(first.shape[1:])
        self._starts = np.cumsum([0] + [len(s) for s in self._spills])
        self.rows = np.asarray(rows, dtype="int64").reshape(-1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self._item)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"SpilledArray(shape={self.shape}, dtype={self.dtype})"

    def _take(self, index: np.ndarray) -> SpilledArray:
        return SpilledArray(self._spills, self.rows[index])

    def _read(self, rows: np.ndarray) -> np.ndarray:
        return _read_rows(self._spills, self._starts, rows)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read(self.rows)
        return out if dtype is None else out.astype(dtype)

    def dataset(
        self, *others: Any, shuffle: bool, seed: int, dtype: str | None = None
    ) -> Any:
        """The rows as an unbatched `tf.data.Dataset`, read `lazy.READ_ROWS` at a time.

        With ``shuffle``, the row indices (not the rows) are shuffled with a
        buffer of all of them, reshuffled every epoch, so shuffling costs no
        memory. `others` (arrays with one entry per row) come beside each row.
        """
        out_dtype = np.dtype(dtype or self.dtype)
        # The dataset holds weak references: a strong one in its reader would keep
        # the files on disk for as long as TensorFlow keeps the function.
        spills, starts = [weakref.ref(s) for s in self._spills], self._starts

        def read(rows: np.ndarray) -> np.ndarray:
            live = [ref() for ref in spills]
            if any(spill is None for spill in live):
                raise RuntimeError(
                    "The spilled rows this dataset reads were removed with the last "
                    "SpilledArray over them: keep the array alive while its dataset "
                    "is used."
                )
            return _read_rows(live, starts, rows).astype(out_dtype, copy=False)

        return stream_rows(
            self.rows, others, read, self._item, out_dtype, shuffle=shuffle, seed=seed
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Any]) -> Any:
        """Joins `SpilledArray`s of one dtype and row shape without reading them
        (anything else as `LazyArray.join`: a `JoinedArray`, still unread)."""
        first = parts[0]
        if not all(
            isinstance(p, SpilledArray)
            and (p.dtype, p._item) == (first.dtype, first._item)
            for p in parts
        ):
            return JoinedArray(parts)
        spills: list[_Spill] = []
        for p in parts:
            for spill in p._spills:
                if all(spill is not known for known in spills):
                    spills.append(spill)
        starts = np.cumsum([0] + [len(s) for s in spills])
        rows = [_remap(p, spills, starts) for p in parts]
        return SpilledArray(spills, np.concatenate(rows))


def _read_rows(spills: Sequence[_Spill], starts: np.ndarray, rows: np.ndarray) -> Any:
    """The given rows of `spills` laid end to end, in the order given."""
    first = spills[0]
    out = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
    for i, spill in enumerate(spills):
        mine = np.flatnonzero((rows >= starts[i]) & (rows < starts[i + 1]))
        if len(mine):
            out[mine] = spill.read(rows[mine] - starts[i])
    return out


def _remap(part: SpilledArray, spills: list[_Spill], starts: np.ndarray) -> np.ndarray:
    """`part`'s rows as indices into `spills` laid end to end."""
    out = np.empty_like(part.rows)
    for i, spill in enumerate(part._spills):
        mine = (part.rows >= part._starts[i]) & (part.rows < part._starts[i + 1])
        where = next(j for j, s in enumerate(spills) if s is spill)
        out[mine] = part.rows[mine] - part._starts[i] + starts[where]
    return out


def read_dataset(
    ds: tf.data.Dataset,
    role: str,
    *,
    labelled: bool = False,
    spill_bytes: int | None = None,
    check: Callable[[np.ndarray, int], None] | None = None,
) -> tuple[Any, np.ndarray | None]:
    """Reads a finite dataset of ``x`` (or ``(x, y, ...)``) into ``(x, y)``.

    ``x`` stays a NumPy array while the inputs read so far fit in
    ``spill_bytes``; past that, every batch is appended to a file in a new
    temporary folder (under `tempfile.gettempdir()`, so ``TMPDIR`` moves it)
    and ``x`` is a `SpilledArray` over it. Labels (``y``) are kept in memory.

    Args:
        ds: a finite `tf.data.Dataset`, batched or not, of inputs ``x`` or, with
            ``labelled``, tuples whose first two entries are ``(x, y)``.
        role: str. ``"source"`` or ``"target"``, for the log line.
        labelled: bool. Whether elements are ``(x, y, ...)``. Defaults to False.
        spill_bytes: int or None. The in-memory limit. Defaults to `SPILL_BYTES`.
        check: callable or None. Called on each batch of inputs with the index of
            its first row, before the batch is kept (e.g. to refuse NaN).

    Returns:
        ``(x, y)``: ``y`` is None unless ``labelled``.
    """
    limit = SPILL_BYTES if spill_bytes is None else int(spill_bytes)
    spec = ds.element_spec
    x_spec = spec[0] if labelled else spec
    batched = len(x_spec.shape) > 0 and x_spec.shape[0] is None
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    held = count = 0
    writer = folder = first = None
    try:
        for element in ds.as_numpy_iterator():
            x = np.asarray(element[0] if labelled else element)
            if labelled:
                y = np.asarray(element[1])
                ys.append(y if batched else y[None])
            if not batched:
                x = x[None]
            first = x if first is None else first
            if x.shape[1:] != first.shape[1:] or x.dtype != first.dtype:
                raise ValueError(
                    f"Expected every {role} example to have inputs of one shape and "
                    f"dtype. Received {first.shape[1:]} {first.dtype} and then "
                    f"{x.shape[1:]} {x.dtype} (examples {count} on): resize or pad "
                    "them to one shape in the dataset (e.g. a map with "
                    "tf.image.resize) before adapt."
                )
            if check is not None:
                check(x, count)
            count += len(x)
            if writer is None:
                xs.append(x)
                held += x.nbytes
                if held > limit and x.dtype.kind in "biuf":
                    folder = Path(tempfile.mkdtemp(prefix=f"keras_transfer_{role}_"))
                    writer = open(folder / "rows.bin", "wb")  # noqa: SIM115
                    for part in xs:
                        writer.write(np.ascontiguousarray(part).tobytes())
                    xs = []
            else:
                writer.write(np.ascontiguousarray(x).tobytes())
    except BaseException as error:
        if writer is not None:
            writer.close()
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise OSError(
                error.errno,
                f"No space left writing the {role} dataset to {folder} "
                f"({count * first[:1].nbytes >> 20} MiB read so far; removed). Set "
                "TMPDIR to a folder with room for it, or pass arrays or "
                "keras_transfer.data.image_files instead of a dataset.",
            ) from error
        raise
    labels = None
    if labelled:
        labels = np.concatenate(ys) if ys else np.zeros((0,), "int64")
    if writer is None:
        return (np.concatenate(xs) if xs else np.zeros((0,), "float32")), labels
    writer.close()
    spill = _Spill(folder / "rows.bin", first.dtype, (count, *first.shape[1:]))
    _LOG.warning(
        "adapt: the %s dataset (%d MiB of inputs) is larger than %d MiB: it was "
        "written to %s and is read back one batch at a time (removed when no "
        "longer used; TMPDIR moves it)",
        role,
        (count * first[:1].nbytes) >> 20,
        limit >> 20,
        folder,
    )
    return SpilledArray([spill], np.arange(count)), labels
