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
        """Concatenates lazily when every part is a lazy array of one kind that
        can be joined; anything else as `np.concatenate` (which reads them)."""
        first = parts[0]
        if isinstance(first, LazyArray) and all(type(p) is type(first) for p in parts):
            return type(first).concatenate(parts)
        return np.concatenate([np.asarray(p) for p in parts])

    @classmethod
    def concatenate(cls, parts: Sequence[Any]) -> Any:
        """Joins lazy arrays of this kind; subclasses join without reading."""
        return np.concatenate([np.asarray(p) for p in parts])
