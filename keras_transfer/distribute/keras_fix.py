"""Version-guarded fix for Keras ``fit`` under ``MultiWorkerMirroredStrategy``.

Keras 3 (measured on 3.15.1) fails in two places of
``keras/src/backend/tensorflow/trainer.py`` when a model is trained with
``MultiWorkerMirroredStrategy`` in multi-worker mode:

1. ``TensorFlowTrainer._maybe_symbolic_build`` reduces the whole first batch (a
   *structure* of ``PerReplica`` values) with one ``strategy.reduce`` call, which the
   collective implementation refuses: "Attempt to convert a value (PerReplica...)
   with an unsupported type" (keras-team/keras#20585). The batch is only needed for
   its shapes, so the fix takes each value's first local replica instead.
2. ``reduce_per_replica`` reduces step logs with ``strategy.reduce("MEAN", v,
   axis=0)``; step logs are scalars, so this fails with "Invalid reduction dimension
   0 for input with 0 dimensions". The fix averages across replicas with
   ``axis=None``, which is what the single-worker branch of the same function does.

Both replacements only change behaviour when the strategy is a
``MultiWorkerMirroredStrategy`` in multi-worker mode; every other call goes to the
original Keras function unchanged.

Guards, one per patch: each patch is applied only while its own faulty code is
still in the installed Keras source (read with ``inspect.getsource``; when the
source cannot be read, while the Keras version is at most ``LAST_BROKEN_VERSION``),
so upgrading to a Keras that fixed one turns that patch into a no-op. Before
wrapping a private function, its signature is checked with ``inspect.signature``:
when Keras changed it, :func:`apply` raises a ``RuntimeError`` naming the function
and the Keras version instead of patching blindly. To remove the fix once upstream
is fixed, delete this file and the call to :func:`apply` in ``strategy.py``. Set
``KERAS_TRANSFER_MWMS_FIX=0`` to disable both patches, ``=1`` to force both.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os

from keras_transfer._backend import keras, tf

logger = logging.getLogger(__name__)

#: Last Keras version on which the bug was seen (used only when the source of
#: ``keras/src/backend/tensorflow/trainer.py`` cannot be read).
LAST_BROKEN_VERSION = (3, 15)
_BUGGY_LINE = 'strategy.reduce("MEAN", v, axis=0)'  # kept for older callers

# name -> (what the patch wraps, its expected parameters, the faulty source text).
PATCHES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "reduce_per_replica": (
        "keras.src.backend.tensorflow.trainer.reduce_per_replica",
        ("values", "strategy", "reduction"),
        'strategy.reduce("MEAN", v, axis=0)',
    ),
    "maybe_symbolic_build": (
        "keras.src.backend.tensorflow.trainer.TensorFlowTrainer._maybe_symbolic_build",
        ("self", "iterator", "data_batch"),
        "self.distribute_strategy.reduce(",
    ),
}
_applied: set[str] = set()


def _trainer_module():
    from keras.src.backend.tensorflow import trainer

    return trainer


def _target(name: str):
    trainer = _trainer_module()
    if name == "reduce_per_replica":
        return trainer.reduce_per_replica
    return trainer.TensorFlowTrainer._maybe_symbolic_build


def _keras_version() -> tuple[int, int]:
    major, minor = keras.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _forced() -> str:
    return os.environ.get("KERAS_TRANSFER_MWMS_FIX", "").strip()


def patch_needed(name: str) -> bool:
    """Whether the Keras code that patch ``name`` replaces still has its bug.

    Args:
        name: str. A key of ``PATCHES``.

    Returns:
        True when the patch should be applied (or ``KERAS_TRANSFER_MWMS_FIX=1``).
    """
    if name not in PATCHES:
        raise ValueError(
            f"Expected name to be one of {sorted(PATCHES)}. Received: name={name!r}"
        )
    forced = _forced()
    if forced in ("0", "1"):
        return forced == "1"
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        source = inspect.getsource(inspect.unwrap(_target(name)))
    except (OSError, TypeError, AttributeError):
        return _keras_version() <= LAST_BROKEN_VERSION
    return PATCHES[name][2] in source


def needed() -> bool:
    """Whether the installed Keras still has either bug (or the env var forces it).

    Returns:
        True when at least one patch should be applied.
    """
    return any(patch_needed(name) for name in PATCHES)


def check_signature(name: str, function) -> None:
    """Raises when a private Keras function no longer has the parameters we wrap.

    Args:
        name: str. A key of ``PATCHES``.
        function: the Keras function about to be wrapped.

    Raises:
        RuntimeError: its parameters differ from ``PATCHES[name]``; the message
            names the function and the installed Keras version.
    """
    path, expected, _ = PATCHES[name]
    try:
        got = tuple(inspect.signature(inspect.unwrap(function)).parameters)
    except (TypeError, ValueError) as err:
        got = (f"<no signature: {err}>",)
    if got != expected:
        raise RuntimeError(
            f"keras-transfer's MultiWorkerMirroredStrategy fix wraps the private "
            f"Keras function {path}{expected}, but Keras {keras.__version__} has "
            f"{path}{got}. The fix cannot be applied safely to this Keras. Set "
            "KERAS_TRANSFER_MWMS_FIX=0 to run without it (multi-worker fit may fail "
            "as described in keras_transfer/distribute/keras_fix.py), or use a Keras "
            f"version this keras-transfer was tested with (<= "
            f"{'.'.join(map(str, LAST_BROKEN_VERSION))})."
        )


def is_applied() -> bool:
    """Whether :func:`apply` has patched Keras in this process (either patch)."""
    return bool(_applied)


def applied_patches() -> tuple[str, ...]:
    """The names of the patches applied in this process, sorted."""
    return tuple(sorted(_applied))


def _in_multi_worker_mode(strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def _first_local(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _patch_reduce_per_replica(trainer) -> None:
    tree = trainer.tree
    original_reduce = trainer.reduce_per_replica

    @functools.wraps(original_reduce)
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return original_reduce(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica


def _patch_maybe_symbolic_build(trainer) -> None:
    tree = trainer.tree
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    @functools.wraps(original_build)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and _in_multi_worker_mode(strategy):
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: _first_local(strategy, v), batch
                )
                break
            iterator = None
        return original_build(self, iterator=iterator, data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


_APPLY = {
    "reduce_per_replica": _patch_reduce_per_replica,
    "maybe_symbolic_build": _patch_maybe_symbolic_build,
}


def apply() -> bool:
    """Applies each patch whose guard says it is needed, each on its own.

    Idempotent; only ever called for ``MultiWorkerMirroredStrategy`` (by
    :func:`keras_transfer.distribute.get_strategy`).

    Returns:
        True when Keras is patched (now or before), False when nothing is needed.

    Raises:
        RuntimeError: a needed patch wraps a private Keras function whose signature
            changed (see :func:`check_signature`).
    """
    trainer = None
    for name in PATCHES:
        if name in _applied or not patch_needed(name):
            continue
        trainer = trainer or _trainer_module()
        check_signature(name, _target(name))
        _APPLY[name](trainer)
        _applied.add(name)
        logger.info(
            "Applied keras-transfer's MultiWorkerMirroredStrategy patch %s to Keras "
            "%s (keras-team/keras#20585 and scalar step-log reduction).",
            name,
            keras.__version__,
        )
    if not _applied:
        logger.debug("Keras %s needs no MultiWorkerMirrored fix.", keras.__version__)
    return bool(_applied)
