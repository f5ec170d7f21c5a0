"""Predictions inside `adapt` without tracing a graph per model.

`adapt` builds a new model for every candidate (and a feature model and an inference
model for each) and predicts with each a few times on inputs of different lengths.
`model.predict` traces a `tf.function` for every new model and every new last-batch
shape; with five candidates that is dozens of traces, and TensorFlow prints its
"triggered tf.function retracing" warning in the middle of a user's run. Calling the
model eagerly on fixed-size slices runs the same layers (inference mode) with no
tracing at all; on batches of 256 the per-op overhead of eager execution is small
next to the work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.data.lazy import LazyArray


def predict_eagerly(model: Any, x: Any, batch_size: int = 256) -> Any:
    """``model(x, training=False)`` in slices of ``batch_size``, as NumPy.

    Args:
        model: keras Model (or any callable layer taking ``training``).
        x: array, or a dict / tuple of arrays with the same first dimension,
            or a lazy array (`keras_transfer.data.ImageFiles`, `SpilledArray`; read one slice
            at a time).
            A `tf.data.Dataset` is passed to ``model.predict`` unchanged, and so
            is everything under a strategy with more than one replica.
        batch_size: int. Examples per call. Defaults to 256.

    Returns:
        The outputs concatenated along the first axis: an array, or the model's
        output structure of arrays.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.predict import predict_eagerly
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.ones((5, 3), "float32")
    got = predict_eagerly(model, x, batch_size=2)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-6)
    ```
    """
    if int(batch_size) < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: {batch_size}")
    if isinstance(x, tf.data.Dataset):
        return model.predict(x, verbose=0)
    if _distributed(model):
        # Keras shards the prediction over the replicas (workers) and gathers the
        # result, so every worker gets the same numbers and makes the same choices
        # (held-out accuracy, the collapse guard, auto's pick); an eager call on
        # each worker can differ in the last bits and break that lockstep.
        if isinstance(x, LazyArray):  # streamed in order, read as it goes
            from keras_transfer.data.pipelines import from_arrays

            x = from_arrays(x, batch_size=batch_size, shuffle=False)
            return model.predict(x, verbose=0)
        return model.predict(x, batch_size=batch_size, verbose=0)
    n = len(tf.nest.flatten(x)[0])
    if n == 0:
        return model.predict(x, verbose=0)
    parts = []
    step = int(batch_size)
    for start in range(0, n, step):
        batch = tf.nest.map_structure(
            lambda a, i=start: (
                np.asarray(a[i : i + step])  # decodes this slice only
                if isinstance(a, LazyArray)
                else a[i : i + step]
            ),
            x,
        )
        out = model(batch, training=False)
        parts.append(tf.nest.map_structure(keras.ops.convert_to_numpy, out))
    return tf.nest.map_structure(lambda *p: np.concatenate(p, axis=0), *parts)


def _distributed(model: Any) -> bool:
    """True under a strategy with several replicas (GPUs, or workers)."""
    strategies = [tf.distribute.get_strategy()]
    strategies.append(getattr(model, "distribute_strategy", strategies[0]))
    return any(s.num_replicas_in_sync > 1 for s in strategies)


__all__ = ["predict_eagerly"]
