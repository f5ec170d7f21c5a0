"""`LazyArray`: what the array-likes read on use (`ImageFiles`, `SpilledArray`) share.

A lazy array has a length, a shape and a dtype, and reads nothing until it is
read: slices and index arrays are lazy arrays of the chosen rows, an int index
reads one row, `np.asarray` reads every row, and `dataset()` streams the rows
as an unbatched `tf.data.Dataset` (with other arrays beside them). The data
helpers (`from_arrays`, `domain_pairs`) and `keras_transfer.adapt` stream any
`LazyArray` instead of reading it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Rows read at a time when a lazy array other than `ImageFiles` streams.
READ_ROWS = 256


def stream_rows(
    keys: np.ndarray,
    others: Sequence[Any],
    read: Any,
    item: tuple[int, ...],
    dtype: Any,
    *,
    shuffle: bool,
    seed: int,
    parallel: bool = True,
) -> Any:
    """An unbatched `tf.data.Dataset` of rows read `READ_ROWS` at a time.

    ``keys`` (one per row) are what is shuffled (with a buffer of all of them,
    reshuffled every epoch: no memory for rows) and batched; ``read(keys)``
    returns those rows as an array of ``dtype``; ``others`` (one entry per row)
    come beside each row. Its cardinality is known.
    """
    from keras_transfer._backend import tf

    n = len(keys)
    ds = tf.data.Dataset.from_tensor_slices((keys, *others))
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)

    def load(batch_keys: Any, *rest: Any) -> Any:
        rows = tf.numpy_function(read, [batch_keys], tf.as_dtype(dtype))
        rows.set_shape((None, *item))
        return (rows, *rest) if rest else rows

    calls = tf.data.AUTOTUNE if parallel else None
    ds = ds.batch(READ_ROWS).map(load, num_parallel_calls=calls).unbatch()
    return ds.apply(tf.data.experimental.assert_cardinality(n))


class LazyArray:
    """Base class of the array-likes that are read on use.

    Subclasses implement `__len__`, `shape`, `dtype`, `_take` (the lazy array of
    some rows), `__array__` (read every row) and `dataset` (stream the rows).

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import tf
    from keras_transfer.data import LazyArray, from_arrays
    from keras_transfer.data.spill import read_dataset
    x, _ = read_dataset(tf.data.Dataset.range(6), "target", spill_bytes=0)
    assert isinstance(x, LazyArray) and len(x[::2]) == 3
    joined = LazyArray.join([x[:2], x[4:]])  # still lazy: nothing read
    assert np.asarray(joined).tolist() == [0, 1, 4, 5]
    assert len(list(from_arrays(joined, batch_size=2))) == 2  # streamed
    ```
    """

    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self, index: np.ndarray) -> LazyArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    def dataset(
        self, *others: Any, shuffle: bool, seed: int, dtype: str | None = None
    ) -> Any:  # pragma: no cover - abstract
        """An unbatched `tf.data.Dataset` of the rows (with `others` beside them)."""
        raise NotImplementedError

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | np.integer):
            return np.asarray(self._take(np.arange(len(self))[[key]]))[0]
        if isinstance(key, slice):
            return self._take(np.arange(len(self))[key])
        index = np.asarray(key)
        if index.ndim == 1 and (index.dtype.kind in "iu" or index.dtype == bool):
            return self._take(np.arange(len(self))[index])
        return np.asarray(self)[key]

    def astype(self, dtype: Any) -> np.ndarray:
        """Reads every row and returns the array in `dtype`."""
        return np.asarray(self).astype(dtype)

    @staticmethod
    def join(parts: Sequence[Any]) -> Any:
        """Concatenates without reading: lazy arrays of one kind with their own
        `concatenate`, a mix of kinds (or lazy arrays and arrays) as a
        `JoinedArray`; arrays alone with `np.concatenate`."""
        first = parts[0]
        if isinstance(first, LazyArray) and all(type(p) is type(first) for p in parts):
            return type(first).concatenate(parts)
        if any(isinstance(p, LazyArray) for p in parts):
            return JoinedArray(parts)
        return np.concatenate([np.asarray(p) for p in parts])

    @classmethod
    def concatenate(cls, parts: Sequence[Any]) -> Any:
        """Joins lazy arrays of this kind; subclasses join without reading."""
        return np.concatenate([np.asarray(p) for p in parts])


class JoinedArray(LazyArray):
    """Rows of several arrays (lazy arrays of different kinds, or NumPy arrays)
    laid end to end, read on use: what `LazyArray.join` returns for a mix.

    Slices and index arrays pick rows across the parts without reading them;
    `np.asarray` reads each part's chosen rows (a lazy part as it reads itself)
    and puts them in order. Its `dataset` reads `READ_ROWS` rows at a time
    and keeps the parts alive while it is used.

    Args:
        parts: arrays with one row shape.
        part_of: int array or None. Each row's part. Defaults to every row of
            every part, in order.
        row_of: int array or None. Each row's index in its part.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import tf
    from keras_transfer.data import LazyArray
    from keras_transfer.data.spill import read_dataset
    lazy, _ = read_dataset(tf.data.Dataset.range(4), "target", spill_bytes=0)
    joined = LazyArray.join([lazy, np.arange(10, 12)])
    assert type(joined).__name__ == "JoinedArray" and len(joined) == 6
    assert np.asarray(joined[::-2]).tolist() == [11, 3, 1]
    ```
    """

    def __init__(
        self,
        parts: Sequence[Any],
        part_of: np.ndarray | None = None,
        row_of: np.ndarray | None = None,
    ) -> None:
        self._parts = tuple(parts)
        shapes = {tuple(p.shape[1:]) for p in self._parts}
        if len(shapes) != 1:
            raise ValueError(
                "Expected arrays with one row shape to join. Received row shapes "
                f"{sorted(shapes)}"
            )
        self._item = shapes.pop()
        self.dtype = np.result_type(*[np.dtype(p.dtype) for p in self._parts])
        if part_of is None:
            sizes = [len(p) for p in self._parts]
            part_of = np.repeat(np.arange(len(sizes)), sizes)
            row_of = np.concatenate([np.arange(n) for n in sizes])
        self._part_of = np.asarray(part_of, "int64")
        self._row_of = np.asarray(row_of, "int64")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._part_of), *self._item)

    def __len__(self) -> int:
        return len(self._part_of)

    def __repr__(self) -> str:
        kinds = ", ".join(type(p).__name__ for p in self._parts)
        return f"JoinedArray(shape={self.shape}, parts=[{kinds}])"

    def _take(self, index: np.ndarray) -> JoinedArray:
        return JoinedArray(self._parts, self._part_of[index], self._row_of[index])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=dtype or self.dtype)
        for i, part in enumerate(self._parts):
            mine = np.flatnonzero(self._part_of == i)
            if len(mine):
                out[mine] = np.asarray(part[self._row_of[mine]])
        return out

    def dataset(
        self, *others: Any, shuffle: bool, seed: int, dtype: str | None = None
    ) -> Any:
        """The rows as an unbatched `tf.data.Dataset`, `READ_ROWS` read at a time
        (one read at a time: a part may be image files decoded by `tf.data`)."""
        out_dtype = np.dtype(dtype or self.dtype)

        def read(positions: np.ndarray) -> np.ndarray:
            return np.asarray(self._take(positions), dtype=out_dtype)

        return stream_rows(
            np.arange(len(self)),
            others,
            read,
            self._item,
            out_dtype,
            shuffle=shuffle,
            seed=seed,
            parallel=False,
        )
