"""Cached backbone features for frozen phases (`unfreeze_depth=0`).

(Over 400 lines on purpose: the three cache stores -- arrays, datasets, disk -- share
one extractor, one key scheme and one fit path; split apart they would import each other.)

With a frozen backbone, every epoch of a head phase runs the whole backbone forward
on the same images to train a few thousand head parameters. `split_model` cuts a
builder-made model into a feature extractor (inputs -> backbone -> pooling) and a
head that shares the model's own layers; `cache_features` runs the extractor once;
`fit_head` trains the head on the cached features, so the trained weights are the
model's and the model stays the usual end-to-end model.

Caching is exact only when the extractor computes the same features in every epoch
and in training mode: no trainable weight before the head input, BatchNormalization
in inference mode, no augmentation, dropout or other random layer, and a data
pipeline that does not change the images between epochs. `caching_blockers` lists
what stands in the way; `cache_features="auto"` (in `fine_tune`, the CLI `train`
config and the tuner) caches only when that list is empty.

In memory (the default up to `memory_limit` bytes of features) the order of the
examples is exactly the uncached one: arrays are fed to `fit` as before, and a
`tf.data` pipeline is still iterated every epoch (its shuffling and batching
unchanged) with each image replaced by its cached features, looked up by a
fingerprint of its bytes. Above the limit, with a `cache_dir`, the features go to a
`tf.data` cache file on disk and are re-shuffled per epoch when the source shuffles
(same examples, another order).
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf

logger = logging.getLogger("keras_transfer")

#: Features kept in memory up to this many bytes (else a disk cache, or no cache).
MEMORY_LIMIT = 1 << 30
#: Batch size of the one pass that computes the features (inference only: the
#: features do not depend on it; larger batches run faster on CPU).
EXTRACT_BATCH_SIZE = 128
#: Head training steps run per `tf.function` call (`steps_per_execution`): the
#: same steps in the same order, with less per-step overhead; batch-level
#: callbacks are called once per execution.
HEAD_STEPS_PER_EXECUTION = 16

_RANDOM_LAYERS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)
# Ops of a tf.data graph that make its elements differ between epochs.
_RANDOM_OP_MARKERS = ("Random", "Stateful", "RngReadAndSkip", "Multinomial")
_PY_OP_MARKERS = ("PyFunc", "Generator")


def check_cache_features(cache_features: Any) -> Any:
    """Validates `cache_features`: "auto", True or False.

    Examples:
    ```python
    from keras_transfer.features import check_cache_features
    assert check_cache_features("auto") == "auto"
    ```
    """
    if cache_features == "auto" or isinstance(cache_features, bool):
        return cache_features
    raise ValueError(
        "Expected cache_features to be 'auto', True or False. "
        f"Received: cache_features={cache_features!r}"
    )


# ------------------------------------------------------------------ the split
def _graph_nodes(model: keras.Model) -> list:
    nodes_by_depth = getattr(model, "_nodes_by_depth", None)
    if not nodes_by_depth:
        return []
    return [n for nodes in nodes_by_depth.values() for n in nodes]


def _is_random(layer: Any) -> bool:
    from keras_transfer.augment import is_augmentation_layer

    rate = getattr(layer, "rate", None)
    if isinstance(layer, _RANDOM_LAYERS) and rate is not None and not rate:
        return False  # Dropout(0): the identity in training too
    if isinstance(layer, _RANDOM_LAYERS) or is_augmentation_layer(layer):
        return True
    return any(isinstance(v, keras.random.SeedGenerator) for v in vars(layer).values())


def _leaves(layer: Any) -> list:
    from keras_transfer.freezing import _children

    children = _children(layer)
    out = [layer]
    for child in children:
        out.extend(_leaves(child))
    return out


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Splits a builder-made model into a feature extractor and a head.

    The cut is at the backbone's output, moved down through the following layers
    that hold no variables and consume that one tensor (the pooling of the head),
    so cached features are `(batch, channels)` vectors where the head pools. Both
    parts share the model's layers: training the head trains the model.

    Args:
        model: keras.Model. A functional model with a nested backbone (from
            `build_classifier` / `build_regressor`).

    Returns:
        `(extractor, head)`: `head(extractor(x))` is `model(x)`.

    Raises:
        ValueError: a model that cannot be cut there (no nested backbone, not
            functional, several uses of the backbone, a head that also reads the
            inputs).

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier
    from keras_transfer.features import split_model
    model = build_classifier("keras_applications:MobileNetV3Small", 2,
                             weights=None, input_shape=(32, 32, 3))
    extractor, head = split_model(model)
    x = np.zeros((2, 32, 32, 3), "float32")
    assert np.allclose(head(extractor(x)), model(x), atol=1e-6)
    ```
    """
    from keras_transfer.freezing import find_backbone

    backbone = find_backbone(model)
    nodes = _graph_nodes(model)
    if backbone is None or not nodes:
        raise ValueError(
            "Expected a functional model with a nested backbone (as made by "
            f"build_classifier). Received: model={model.name!r} "
            f"({type(model).__name__})"
        )
    calls = [n for n in nodes if n.operation is backbone]
    if len(calls) != 1 or len(calls[0].output_tensors) != 1:
        raise ValueError(
            "Expected the backbone to be called once with one output tensor. "
            f"Received: {len(calls)} calls of {backbone.name!r}"
        )
    cut = calls[0].output_tensors[0]
    while True:
        consumers = [n for n in nodes if any(t is cut for t in n.input_tensors)]
        if len(consumers) != 1:
            break
        node = consumers[0]
        layer = node.operation
        if (
            len(node.input_tensors) != 1
            or len(node.output_tensors) != 1
            or layer.variables
            or _is_random(layer)
            or any(o is node.output_tensors[0] for o in model.outputs)
        ):
            break
        cut = node.output_tensors[0]
    try:
        extractor = keras.Model(model.input, cut, name=f"{model.name}_features")
        head = keras.Model(cut, model.outputs, name=f"{model.name}_head")
    except ValueError as err:
        raise ValueError(
            f"Cannot cut {model.name!r} at the backbone's output: {err}"
        ) from err
    return extractor, head


def caching_blockers(model: keras.Model, extractor: keras.Model | None) -> list[str]:
    """Why features computed once would differ from those of training (empty: none).

    Args:
        model: keras.Model. The whole model.
        extractor: keras.Model or None. Its feature extractor (`split_model`).

    Returns:
        A list of reasons, each naming the layer or setting to change.
    """
    reasons = []
    if extractor is None:
        return ["the model cannot be split into feature extractor and head"]
    if model.distribute_strategy.num_replicas_in_sync > 1:
        reasons.append("a multi-replica distribution strategy")
    trainable = [w.path for w in extractor.trainable_weights]
    if trainable:
        reasons.append(
            f"{len(trainable)} trainable weights before the head input (e.g. "
            f"{trainable[0]}): freeze the backbone (unfreeze_depth=0)"
        )
    for layer in _leaves(extractor):
        if layer is extractor:
            continue
        from keras_transfer.augment import is_augmentation_layer
        from keras_transfer.freezing import is_batchnorm

        if is_augmentation_layer(layer):
            reasons.append(f"augmentation layer {layer.name!r} before the head")
        elif _is_random(layer):
            reasons.append(
                f"random layer {layer.name!r} ({type(layer).__name__}) before the head"
            )
        elif is_batchnorm(layer) and layer.trainable:
            reasons.append(
                f"BatchNormalization {layer.name!r} in training mode "
                "(train_batchnorm=True, or 'auto' with untrained statistics)"
            )
    return list(dict.fromkeys(reasons))


def _dataset_ops(dataset: Any) -> set[str]:
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    ops = {n.op for n in graph.node}
    for function in graph.library.function:
        ops.update(n.op for n in function.node_def)
    return ops


def data_blockers(data: Any) -> list[str]:
    """Why this training data cannot be cached exactly (empty: it can).

    Arrays (a tuple `(x, y[, sample_weight])`) and finite `tf.data` pipelines
    without random ops qualify; a shuffled pipeline does (the order is kept).
    """
    if isinstance(data, tuple) and len(data) in (2, 3):
        return []
    if not isinstance(data, tf.data.Dataset):
        if inspect.isgenerator(data):
            return ["a Python generator (cannot be iterated twice)"]
        return [f"training data of type {type(data).__name__}"]
    if not isinstance(data.element_spec, tuple) or len(data.element_spec) not in (
        2,
        3,
    ):
        return ["a dataset whose elements are not (x, y[, sample_weight]) tuples"]
    if data.cardinality() == tf.data.INFINITE_CARDINALITY:
        return ["an infinite dataset (repeat())"]
    try:
        ops = _dataset_ops(data)
    except Exception as err:  # noqa: BLE001 - any failure: cannot tell
        return [f"a dataset whose graph cannot be inspected ({err})"]
    random = sorted(o for o in ops if any(m in o for m in _RANDOM_OP_MARKERS))
    if random:
        return [f"random ops in the data pipeline ({', '.join(random[:3])})"]
    python = sorted(o for o in ops if any(m in o for m in _PY_OP_MARKERS))
    if python:
        return [
            "Python code in the data pipeline (from_generator/py_function): it "
            "may be random; pass cache_features=True if it is not"
        ]
    return []


# ------------------------------------------------------------------ the cache
@dataclass
class CachedFeatures:
    """Features of the training (and validation) data, ready for `fit_head`.

    Attributes:
        fit_kwargs: dict. `fit` arguments for the head (`x`, `y`, ... or a dataset).
        validation: The validation data for the head, or None.
        num_examples: int. Training examples cached.
        dims: int. Feature values per example.
        where: str. "memory" or the cache folder on disk.
    """

    fit_kwargs: dict
    validation: Any
    num_examples: int
    dims: int
    where: str = "memory"
    _cleanup: list = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Removes temporary disk caches."""
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()


class _TooLarge(Exception):
    pass


def _feature_fn(extractor: keras.Model) -> Any:
    @tf.function(reduce_retracing=True)
    def run(x: Any) -> Any:
        return extractor(x, training=False)

    return run


def _keys(x: Any) -> Any:
    """One int64 fingerprint per example of the batch `x` (a tensor or a dict)."""
    parts = []
    for t in tf.nest.flatten(x):
        t = tf.convert_to_tensor(t)
        parts.append(tf.fingerprint(tf.reshape(t, tf.stack([tf.shape(t)[0], -1]))))
    fp = parts[0] if len(parts) == 1 else tf.fingerprint(tf.concat(parts, axis=1))
    return tf.bitcast(fp, tf.int64)


def _arrays_in_memory(
    run: Any, x: Any, batch_size: int, memory_limit: int
) -> np.ndarray:
    n = len(tf.nest.flatten(x)[0])
    out, size = [], 0
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size)
        part = tf.nest.map_structure(lambda a, rows=rows: a[rows], x)
        f = np.asarray(run(part))
        size += f.nbytes
        if size * n / min(n, start + batch_size) > memory_limit:
            raise _TooLarge
        out.append(f)
    return np.concatenate(out)


def _dataset_in_memory(run: Any, dataset: Any, memory_limit: int) -> tuple:
    keys, feats, size = [], [], 0
    for element in dataset.unbatch().batch(EXTRACT_BATCH_SIZE):
        f = np.asarray(run(element[0]))
        size += f.nbytes
        if size > memory_limit:
            raise _TooLarge
        keys.append(_keys(element[0]).numpy())
        feats.append(f)
    keys = np.concatenate(keys)
    feats = np.concatenate(feats)
    n = len(keys)
    keys, first = np.unique(keys, return_index=True)  # same bytes: same features
    return keys, feats[first], n


def _lookup_dataset(dataset: Any, keys: np.ndarray, feats: np.ndarray) -> Any:
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.int64), tf.range(len(keys), dtype=tf.int64)
        ),
        default_value=-1,
    )
    features = tf.constant(feats)

    def swap(x: Any, *rest: Any) -> tuple:
        index = table.lookup(_keys(x))
        check = tf.debugging.assert_non_negative(
            index,
            message="cache_features: an example of this epoch was not in the "
            "cache (the data pipeline changed it: random augmentation?). Use "
            "cache_features=False.",
        )
        with tf.control_dependencies([check]):
            return (tf.gather(features, index), *rest)

    mapped = dataset.map(swap, num_parallel_calls=tf.data.AUTOTUNE)
    mapped._keras_transfer_table = table  # keep the table alive with the dataset
    return mapped.prefetch(tf.data.AUTOTUNE)


def _as_batches(data: Any, batch_size: int) -> tuple[Any, bool]:
    """A batched dataset of `data` and whether its order changes between epochs."""
    if isinstance(data, tf.data.Dataset):
        return data, any("Shuffle" in o for o in _dataset_ops(data))
    return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(batch_size), True


def _on_disk(
    run: Any, data: Any, batch_size: int, folder: str, name: str, shuffle: bool
) -> tuple[Any, int, int]:
    batches, shuffled = _as_batches(data, batch_size)
    path = os.path.join(folder, name)
    cached = batches.map(lambda x, *rest: (run(x), *rest)).unbatch().cache(path)
    n = int(cached.reduce(np.int64(0), lambda count, _: count + 1))
    dims = int(np.prod(cached.element_spec[0].shape))
    if shuffle and shuffled:
        cached = cached.shuffle(min(n, 10_000), reshuffle_each_iteration=True)
    return cached.batch(batch_size).prefetch(tf.data.AUTOTUNE), n, dims


def cache_features(
    extractor: keras.Model,
    train: Any,
    validation: Any = None,
    *,
    batch_size: int = 32,
    cache_dir: str | None = None,
    memory_limit: int = MEMORY_LIMIT,
    required: bool = False,
) -> CachedFeatures | None:
    """Runs `extractor` once over the data and returns what `fit_head` trains on.

    Args:
        extractor: keras.Model. From `split_model`.
        train: A tuple `(x, y[, sample_weight])` of arrays or a finite
            `tf.data.Dataset` of such batches.
        validation: The same kinds, or None.
        batch_size: int. Batch size for arrays (as `fit` uses). Defaults to 32.
        cache_dir: str or None. Where features too large for memory go (a
            `tf.data` cache file in a fresh sub-folder, removed by
            `CachedFeatures.close`). None: the system's temporary folder when
            `required`, else no caching.
        memory_limit: int. Bytes of features kept in memory. Defaults to 1 GiB.
        required: bool. Cache on disk even without `cache_dir`.

    Returns:
        A `CachedFeatures`, or None when the features do not fit in memory and
        there is no `cache_dir` (and not `required`).

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier
    from keras_transfer.features import cache_features, split_model
    model = build_classifier("keras_applications:MobileNetV3Small", 2,
                             weights=None, input_shape=(32, 32, 3))
    extractor, head = split_model(model)
    x = np.zeros((8, 32, 32, 3), "float32")
    cached = cache_features(extractor, (x, np.arange(8) % 2))
    assert (cached.num_examples, cached.dims) == (8, 576)
    ```
    """
    run = _feature_fn(extractor)
    try:
        fit_kwargs, n, dims = _train_in_memory(run, train, batch_size, memory_limit)
        val = _validation_in_memory(run, validation, batch_size, memory_limit)
        return CachedFeatures(fit_kwargs, val, n, dims)
    except _TooLarge:
        pass
    if cache_dir is None and not required:
        return None
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
    # A fresh folder per cache, removed by close().
    cache_dir = tempfile.mkdtemp(prefix="keras-transfer-features-", dir=cache_dir)
    cleanup = [cache_dir]
    ds, n, dims = _on_disk(run, train, batch_size, cache_dir, "train", True)
    val = None
    if validation is not None:
        val = _on_disk(run, validation, batch_size, cache_dir, "validation", False)[0]
    return CachedFeatures({"x": ds}, val, n, dims, cache_dir, cleanup)


def _train_in_memory(run: Any, train: Any, batch_size: int, limit: int) -> tuple:
    if isinstance(train, tf.data.Dataset):
        keys, feats, n = _dataset_in_memory(run, train, limit)
        return {"x": _lookup_dataset(train, keys, feats)}, n, _dims(feats)
    feats = _arrays_in_memory(run, train[0], max(batch_size, EXTRACT_BATCH_SIZE), limit)
    kwargs = {"x": feats, "y": train[1], "batch_size": batch_size}
    if len(train) == 3:
        kwargs["sample_weight"] = train[2]
    return kwargs, len(feats), _dims(feats)


def _validation_in_memory(run: Any, validation: Any, batch_size: int, limit: int):
    if validation is None:
        return None
    if isinstance(validation, tf.data.Dataset):
        keys, feats, _ = _dataset_in_memory(run, validation, limit)
        return _lookup_dataset(validation, keys, feats)
    feats = _arrays_in_memory(
        run, validation[0], max(batch_size, EXTRACT_BATCH_SIZE), limit
    )
    return (feats, *validation[1:])


def _dims(feats: np.ndarray) -> int:
    return int(np.prod(feats.shape[1:]))


class FeaturePlan:
    """Decides once whether frozen stages use cached features, and holds them.

    Args:
        model: keras.Model. The whole model (its backbone frozen when `get` is
            called).
        train: Training data (see `cache_features`).
        validation: Validation data or None.
        mode: "auto", True or False (see `fine_tune(cache_features=)`).
        cache_dir: str or None. See `cache_features`.
        prefix: str. Log prefix. Defaults to "fine_tune".
    """

    def __init__(
        self,
        model: Any,
        train: Any,
        validation: Any,
        mode: Any,
        cache_dir: Any,
        prefix: str = "fine_tune",
    ) -> None:
        self.prefix = prefix
        self.model, self.train, self.validation = model, train, validation
        self.mode, self.cache_dir = mode, cache_dir
        self.decided = False
        self.head = self.cached = None

    def get(self, verbose: Any) -> Any:
        """(head, cached features) for a frozen stage, or None to run uncached."""
        if self.mode is False:
            return None
        if not self.decided:
            self.decided = True
            self._decide(verbose)
        return None if self.cached is None else (self.head, self.cached)

    def _decide(self, verbose: Any) -> None:
        try:
            extractor, head = split_model(self.model)
        except ValueError as err:
            extractor = head = None
            reasons = [str(err)]
        else:
            reasons = caching_blockers(self.model, extractor)
        reasons += data_blockers(self.train)
        if self.validation is not None and not reasons:
            reasons += [f"validation: {r}" for r in data_blockers(self.validation)]
        if reasons:
            self._refuse(reasons)
            return
        cached = cache_features(
            extractor,
            self.train,
            self.validation,
            cache_dir=self.cache_dir,
            required=self.mode is True,
        )
        if cached is None:
            self._refuse(
                [
                    f"the features exceed MEMORY_LIMIT "
                    f"({MEMORY_LIMIT} bytes) and no cache_dir was given"
                ]
            )
            return
        self.head, self.cached = head, cached
        log_cached(self.prefix, cached, verbose)

    def _refuse(self, reasons: list) -> None:
        text = "; ".join(reasons)
        if self.mode is True:
            raise ValueError(
                "cache_features=True, but the head phase cannot be trained on "
                f"cached features exactly: {text}. Change that, or pass "
                "cache_features='auto' (or False)."
            )
        logger.info("[%s] head phase runs uncached: %s", self.prefix, text)

    def close(self) -> None:
        if self.cached is not None:
            self.cached.close()


# -------------------------------------------------------------- head training
class _Sync(keras.callbacks.Callback):
    """Carries what callbacks set on the whole model over to the head being fit."""

    def __init__(self, head: keras.Model) -> None:
        super().__init__()
        self.head = head

    def on_train_begin(self, logs: dict | None = None) -> None:
        # BackupAndRestore sets the epoch to resume from on the model it watches.
        self.head._initial_epoch = getattr(self.model, "_initial_epoch", None)

    def _stop(self) -> None:
        if getattr(self.model, "stop_training", False):
            self.head.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._stop()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._stop()


def compile_head(model: keras.Model, head: keras.Model) -> keras.Model:
    """Compiles `head` with `model`'s optimizer (shared), loss and metrics.

    Runs `HEAD_STEPS_PER_EXECUTION` steps per call (unless `model` sets more).
    """
    config = model.get_compile_config() or {}
    loss = keras.saving.deserialize_keras_object(config.get("loss"))
    metrics = config.get("metrics")
    metrics = (
        None if metrics is None else keras.saving.deserialize_keras_object(metrics)
    )
    with model.distribute_strategy.scope():
        head.compile(
            optimizer=model.optimizer,
            loss=loss,
            metrics=metrics,
            loss_weights=config.get("loss_weights"),
            weighted_metrics=keras.saving.deserialize_keras_object(
                config.get("weighted_metrics")
            ),
            steps_per_execution=max(
                HEAD_STEPS_PER_EXECUTION, getattr(model, "steps_per_execution", 1)
            ),
        )
    return head


def fit_head(
    model: keras.Model,
    head: keras.Model,
    cached: CachedFeatures,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: list | None = None,
    verbose: Any = "auto",
) -> keras.callbacks.History:
    """Trains `head` (sharing `model`'s layers) on cached features.

    Callbacks see the whole `model` (checkpoints save it, `BackupAndRestore`
    restores it, `EarlyStopping` stops it); the head uses `model`'s optimizer.

    Args:
        model: keras.Model. The compiled whole model.
        head: keras.Model. Its head (`split_model`), compiled by `compile_head`.
        cached: CachedFeatures. From `cache_features`.
        epochs: int. Index of the last epoch + 1, as `fit(epochs=)`.
        initial_epoch: int. First epoch, as `fit(initial_epoch=)`.
        callbacks: list or None. Keras callbacks.
        verbose: Passed to `fit`.

    Returns:
        The `keras.callbacks.History` of the epochs run.
    """
    verbose = 1 if verbose == "auto" else verbose
    kwargs = dict(cached.fit_kwargs)
    x = kwargs["x"]
    if isinstance(x, tf.data.Dataset):
        steps = int(x.cardinality()) if x.cardinality() >= 0 else None
        kwargs["shuffle"] = False
    else:
        steps = -(-len(x) // kwargs.get("batch_size", 32))
    callback_list = keras.callbacks.CallbackList(
        list(callbacks or []) + [_Sync(head)],
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    head.history = None  # fit returns it; the History callback sets model's
    try:
        # The shared optimizer was built under the model's strategy (a one-replica
        # MirroredStrategy keeps the cache); its slots must be created there too.
        with model.distribute_strategy.scope():
            head.fit(
                **kwargs,
                validation_data=cached.validation,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=callback_list,
                verbose=verbose,
            )
    finally:
        head._initial_epoch = None
        model.stop_training = False
    return callback_list._history


def log_cached(prefix: str, cached: CachedFeatures, verbose: Any = 1) -> str:
    """Logs (and prints unless `verbose=0`) that a phase runs on cached features."""
    where = "" if cached.where == "memory" else f" (disk cache in {cached.where})"
    message = (
        f"[{prefix}] head phase on cached features: {cached.num_examples} "
        f"examples, {cached.dims} dims{where}"
    )
    logger.info(message)
    if verbose != 0:
        print(message)
    return message
