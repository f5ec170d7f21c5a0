"""Strategy selection and opt-in distribution for keras-transfer.

The same training script runs on one CPU, on N GPUs of one machine and on N machines:
pass ``strategy=`` (a name or a ``tf.distribute.Strategy``) to the builders and
``fine_tune``; they build and compile inside :func:`maybe_distribute`. Distribution
itself is TensorFlow's (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``,
``TPUStrategy``); this module only picks one, enters its scope and works around a
known Keras bug (see :mod:`keras_transfer.distribute.keras_fix`).

(Over 400 lines on purpose: choosing a strategy, entering its scope, moving a model
into it and sizing batches per replica all read the same cluster facts -- TF_CONFIG,
visible devices, replicas in sync -- and are documented as one user story.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer.distribute.cluster import parse_tf_config, runtime_initialized

logger = logging.getLogger(__name__)

STRATEGY_NAMES = ("auto", "default", "mirrored", "multi_worker", "tpu")

__all__ = [
    "STRATEGY_NAMES",
    "backup_callback",
    "get_strategy",
    "global_batch_size",
    "into_scope",
    "maybe_distribute",
    "num_replicas",
    "num_workers_from_tf_config",
    "per_replica_batch_size",
]


def num_workers_from_tf_config(tf_config: str | dict | None = None) -> int:
    """Counts the workers (``worker`` + ``chief``) named in ``TF_CONFIG``.

    Args:
        tf_config: str, dict or None. A ``TF_CONFIG`` value; None reads the
            ``TF_CONFIG`` environment variable. Defaults to None.

    Returns:
        The number of workers, 0 when ``TF_CONFIG`` is unset or names no cluster.

    Raises:
        ValueError: if ``TF_CONFIG`` is not valid JSON.

    Examples:
    ```python
    >>> num_workers_from_tf_config({"cluster": {"worker": ["a:1", "b:2"]}})
    2

    ```
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    if isinstance(tf_config, str):
        if not tf_config.strip():
            return 0
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"Expected TF_CONFIG to be JSON. Received: TF_CONFIG={tf_config!r}"
            ) from err
    cluster = (tf_config or {}).get("cluster", {}) or {}
    return len(cluster.get("worker", []) or []) + len(cluster.get("chief", []) or [])


def _visible_gpus() -> list[str]:
    # Physical devices only: listing logical devices starts the TensorFlow runtime,
    # after which MultiWorkerMirroredStrategy can no longer configure collectives.
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def get_strategy(
    name: str | tf.distribute.Strategy = "auto",
    devices: Sequence[str] | None = None,
    *,
    tpu: str | None = None,
) -> tf.distribute.Strategy:
    """Returns a ``tf.distribute.Strategy`` chosen by name.

    ``"auto"`` picks ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more than
    one worker, ``MirroredStrategy`` when more than one GPU is visible, and the default
    (no-op) strategy otherwise, and logs what it chose and why. Deciding reads
    ``TF_CONFIG`` and the physical devices only, without starting the TensorFlow
    runtime, so ``get_strategy("auto")`` is safe as the first line of a script (where
    a multi-worker strategy must be made).

    Args:
        name: str or tf.distribute.Strategy. One of ``"auto"``, ``"default"``,
            ``"mirrored"``, ``"multi_worker"``, ``"tpu"``; a strategy is returned
            unchanged. Defaults to ``"auto"``.
        devices: list of str or None. Devices for ``"mirrored"`` (e.g.
            ``["/cpu:0", "/cpu:1"]``); None uses every visible GPU (or the CPU).
            Defaults to None.
        tpu: str or None. TPU address for ``"tpu"``; None lets the cluster resolver
            find it (Cloud TPU VM). Defaults to None.

    Returns:
        A ``tf.distribute.Strategy``; the same instance for the same arguments
        within a process. A ``MultiWorkerMirroredStrategy`` comes with the
        Keras fix of :mod:`keras_transfer.distribute.keras_fix` applied.

    Raises:
        ValueError: if ``name`` is not a known strategy name, ``devices`` is given
            with another strategy than ``"mirrored"``, or ``TF_CONFIG`` is malformed
            (see :func:`keras_transfer.distribute.parse_tf_config`).
        RuntimeError: a multi-worker strategy is asked for after the TensorFlow
            runtime has started in this process: the message says to make the
            strategy first, at the top of the script.

    Examples:
    ```python
    >>> strategy = get_strategy("default")
    >>> strategy.num_replicas_in_sync
    1

    ```
    """
    if isinstance(name, tf.distribute.Strategy):
        if isinstance(name, tf.distribute.MultiWorkerMirroredStrategy):
            _apply_mwms_fix()
        return name
    if not isinstance(name, str) or name not in STRATEGY_NAMES:
        raise ValueError(
            f"Expected strategy to be one of {STRATEGY_NAMES} or a "
            f"tf.distribute.Strategy. Received: strategy={name!r}"
        )
    if devices is not None and name not in ("mirrored", "auto"):
        raise ValueError(
            "`devices` is only used by the 'mirrored' strategy. Received: "
            f"strategy={name!r}, devices={devices!r}"
        )
    spec = parse_tf_config() if name in ("auto", "multi_worker") else None
    if name == "auto":
        workers = spec.num_workers if spec is not None else 0
        gpus = _visible_gpus()
        if workers > 1:
            name, why = "multi_worker", f"TF_CONFIG names {workers} workers"
        elif devices is not None and len(devices) > 1:
            name, why = "mirrored", f"{len(devices)} devices were given"
        elif len(gpus) > 1:
            name, why = "mirrored", f"{len(gpus)} GPUs are visible"
        else:
            name = "default"
            why = f"TF_CONFIG names {workers} worker(s) and {len(gpus)} GPU(s) visible"
        logger.info("get_strategy('auto') chose %r because %s.", name, why)
    if name == "default":
        return tf.distribute.get_strategy()
    key = (name, tuple(devices or ()), tpu)
    if key not in _STRATEGIES:
        multi = name == "multi_worker" and spec is not None and spec.num_workers > 1
        if multi and runtime_initialized():
            raise RuntimeError(_too_late(spec.num_workers))
        try:
            _STRATEGIES[key] = _make(name, devices, tpu)
        except RuntimeError as err:
            if multi and "program startup" in str(err):
                raise RuntimeError(_too_late(spec.num_workers)) from err
            raise
    return _STRATEGIES[key]


def _too_late(workers: int) -> str:
    return (
        f"TF_CONFIG names {workers} workers, so this process needs a "
        "MultiWorkerMirroredStrategy, but the TensorFlow runtime has already started "
        "here (a tensor, a model or a device listing came first), and collective ops "
        'can only be configured before that. Move `strategy = get_strategy("auto")` '
        "(or the first call given strategy=...) to the top of the script, right after "
        "the imports, before any other TensorFlow or Keras work."
    )


# One strategy per (name, devices, tpu) per process: a model built with
# strategy="mirrored" must be compiled and fitted in that same strategy, and
# MultiWorkerMirroredStrategy/TPU initialisation can only happen once.
_STRATEGIES: dict[tuple, tf.distribute.Strategy] = {}


def _make(name: str, devices, tpu) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(
            devices=list(devices) if devices else None
        )
    if name == "multi_worker":
        _apply_mwms_fix()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _apply_mwms_fix() -> None:
    from keras_transfer.distribute import keras_fix

    keras_fix.apply()


@contextlib.contextmanager
def maybe_distribute(
    strategy: str | tf.distribute.Strategy | None,
) -> Iterator[tf.distribute.Strategy]:
    """Enters a strategy's scope, or does nothing for None / ``"default"``.

    Build and compile models inside it (variables and the optimizer are created where
    the strategy wants them); ``fit`` can be called outside.

    Args:
        strategy: None, a strategy name accepted by :func:`get_strategy`, or a
            ``tf.distribute.Strategy``.

    Yields:
        The strategy in use (the default strategy for None).

    Raises:
        ValueError: if ``strategy`` is an unknown name or type.

    Examples:
    ```python
    >>> with maybe_distribute(None) as s:
    ...     model = keras.Sequential([keras.layers.Dense(1)])
    >>> s.num_replicas_in_sync
    1

    ```
    """
    if strategy is None or (isinstance(strategy, str) and strategy == "default"):
        yield tf.distribute.get_strategy()
        return
    if not isinstance(strategy, (str, tf.distribute.Strategy)):
        raise ValueError(
            "Expected strategy to be None, a name in "
            f"{STRATEGY_NAMES} or a tf.distribute.Strategy. Received: "
            f"strategy={strategy!r} of type {type(strategy).__name__}"
        )
    strategy = get_strategy(strategy)
    if tf.distribute.has_strategy() and tf.distribute.get_strategy() is strategy:
        yield strategy  # already inside this scope: re-entering is harmless but noisy
        return
    with strategy.scope():
        yield strategy


def _created_in(strategy: tf.distribute.Strategy, variable: Any) -> bool:
    tf_variable = getattr(variable, "value", variable)  # a Keras 3 Variable wraps one
    try:
        return strategy.extended.variable_created_in_scope(tf_variable)
    except (TypeError, ValueError, AttributeError):
        return True  # not a tf.Variable: nothing the strategy will colocate


def into_scope(model: Any) -> Any:
    """Returns ``model``, or a copy whose variables belong to the strategy in scope.

    A model built before ``with strategy.scope():`` keeps variables the strategy did
    not create; training its weights there fails deep in TensorFlow
    (``colocate_vars_with must only be passed a variable created in this
    tf.distribute.Strategy.scope()``, when the optimizer makes its slots). Called in
    a strategy's scope, this copies such a model with `keras.models.clone_model`
    (layer configs, so trainable flags too) and its weights, and logs it. Outside any
    strategy, or when every variable already belongs to it, ``model`` is returned as
    it is. The builders and `adapt` call it on a backbone given as a `keras.Model`, so
    with ``strategy=`` the returned model holds a trained copy: the object passed in
    is not updated.

    Args:
        model: Any. A `keras.Model` (anything else is returned as it is).

    Returns:
        ``model`` or its copy.

    Raises:
        ValueError: the model needs a copy and `clone_model` cannot make one (a
            subclassed model without ``get_config``); the message says to build it
            inside ``maybe_distribute(strategy)``.

    Examples:
    ```python
    from keras_transfer._backend import keras, tf
    from keras_transfer.distribute import into_scope
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert into_scope(model) is model  # no strategy in scope
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        copy = into_scope(model)
    assert copy is not model
    assert all(
        (a == b).all() for a, b in zip(copy.get_weights(), model.get_weights())
    )
    ```
    """
    if not isinstance(model, keras.Model) or not tf.distribute.has_strategy():
        return model
    strategy = tf.distribute.get_strategy()
    if all(_created_in(strategy, v) for v in model.weights):
        return model
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception as err:  # clone_model raises several types for subclasses
        raise ValueError(
            "Expected a model whose variables were created inside the strategy's "
            "scope, or one keras.models.clone_model can copy into it. Received: "
            f"{type(model).__name__} {model.name!r}, built outside the scope and not "
            f"copyable ({type(err).__name__}: {err}). Build it inside "
            "`with keras_transfer.distribute.maybe_distribute(strategy):`, or pass a "
            "backbone spec string."
        ) from err
    logger.info(
        "Copied %r into the %s scope (it was built outside it).",
        model.name,
        type(strategy).__name__,
    )
    return copy


def num_replicas(strategy: tf.distribute.Strategy | str | None = None) -> int:
    """Returns how many replicas a strategy trains on in sync (1 for None)."""
    if strategy is None:
        return tf.distribute.get_strategy().num_replicas_in_sync
    return get_strategy(strategy).num_replicas_in_sync


def global_batch_size(
    per_replica: int, strategy: tf.distribute.Strategy | str | None = None
) -> int:
    """Global batch size to give ``tf.data`` for a per-replica batch size.

    Keras ``fit`` under a strategy splits each batch of the dataset across the
    replicas, so the dataset's batch size is the **global** batch size: to keep 32
    examples per device on 4 GPUs, batch the dataset by 128 (and usually scale the
    learning rate with it).

    Args:
        per_replica: int. Examples each replica sees per step.
        strategy: strategy, name or None (the current strategy). Defaults to None.

    Returns:
        ``per_replica * strategy.num_replicas_in_sync``.

    Raises:
        ValueError: if ``per_replica`` is not a positive int.

    Examples:
    ```python
    >>> global_batch_size(32, "default")
    32

    ```
    """
    if not isinstance(per_replica, int) or per_replica < 1:
        raise ValueError(
            "Expected per_replica to be an int >= 1. "
            f"Received: per_replica={per_replica!r}"
        )
    return per_replica * num_replicas(strategy)


def per_replica_batch_size(
    global_batch: int, strategy: tf.distribute.Strategy | str | None = None
) -> int:
    """Per-replica batch size for a global batch size (it must divide evenly).

    Args:
        global_batch: int. The dataset's batch size.
        strategy: strategy, name or None (the current strategy). Defaults to None.

    Returns:
        ``global_batch // strategy.num_replicas_in_sync``.

    Raises:
        ValueError: if ``global_batch`` is not a positive multiple of the replica count.

    Examples:
    ```python
    >>> per_replica_batch_size(64, "default")
    64

    ```
    """
    replicas = num_replicas(strategy)
    if not isinstance(global_batch, int) or global_batch < 1 or global_batch % replicas:
        raise ValueError(
            f"Expected global_batch to be a positive multiple of the {replicas} "
            f"replica(s). Received: global_batch={global_batch!r}"
        )
    return global_batch // replicas


def backup_callback(
    backup_dir: str | os.PathLike | None, **kwargs: Any
) -> keras.callbacks.BackupAndRestore | None:
    """A cluster-aware ``keras.callbacks.BackupAndRestore`` for fault tolerance.

    When a process dies, running the same script again with the same
    ``backup_dir`` resumes after the last completed epoch (weights, optimizer
    state, random state and epoch counter); the backup is deleted when ``fit``
    finishes normally. It is a :class:`keras_transfer.distribute.backup.ResumableBackup`.

    Under ``MultiWorkerMirroredStrategy`` give every worker the **same**
    ``backup_dir`` (a shared filesystem): only the chief (``TF_CONFIG`` task
    ``chief``, else ``worker`` 0) writes it; the other workers write to a temporary
    ``backup_dir/workertemp_<index>`` removed after each save (the
    ``write_filepath`` pattern of TensorFlow's multi-worker guide). After all
    workers are restarted, each restores the chief's backup, so they resume in
    lockstep.

    Args:
        backup_dir: path or None. Where to keep the backup; None returns None.
        **kwargs: passed to ``BackupAndRestore`` (``save_freq``,
            ``delete_checkpoint``, ``double_checkpoint``).

    Returns:
        The callback, or None when ``backup_dir`` is None.

    Examples:
    ```python
    >>> backup_callback(None) is None
    True

    ```
    """
    if backup_dir is None:
        return None
    from keras_transfer.distribute.backup import ResumableBackup

    return ResumableBackup(os.fspath(backup_dir), **kwargs)
