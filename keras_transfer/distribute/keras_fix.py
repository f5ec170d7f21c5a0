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

Guard: :func:`needed` reads the installed Keras source and applies the fix only
while the faulty ``axis=0`` line is still there (falling back to the Keras
version when the source cannot be read), so upgrading to a Keras that fixed it
turns this module into a no-op. To remove it once upstream is fixed, delete this
file and the call to :func:`apply` in ``strategy.py``. Set
``KERAS_TRANSFER_MWMS_FIX=0`` to disable it, ``=1`` to force it.
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
_BUGGY_LINE = 'strategy.reduce("MEAN", v, axis=0)'
_applied = False


def _trainer_module():
    from keras.src.backend.tensorflow import trainer

    return trainer


def _keras_version() -> tuple[int, int]:
    major, minor = keras.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def needed() -> bool:
    """Whether the installed Keras still has the bug (or the env var forces it).

    Returns:
        True when the fix should be applied.
    """
    forced = os.environ.get("KERAS_TRANSFER_MWMS_FIX", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        source = inspect.getsource(_trainer_module().reduce_per_replica)
    except (OSError, TypeError, AttributeError):
        return _keras_version() <= LAST_BROKEN_VERSION
    return _BUGGY_LINE in source


def is_applied() -> bool:
    """Whether :func:`apply` has patched Keras in this process."""
    return _applied


def _in_multi_worker_mode(strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def _first_local(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def apply() -> bool:
    """Patches Keras's TensorFlow trainer when :func:`needed` says so.

    Idempotent; only ever called for ``MultiWorkerMirroredStrategy`` (by
    :func:`keras_transfer.distribute.get_strategy`).

    Returns:
        True when Keras is patched (now or before), False when not needed.
    """
    global _applied
    if _applied:
        return True
    if not needed():
        logger.debug("Keras %s needs no MultiWorkerMirrored fix.", keras.__version__)
        return False
    trainer = _trainer_module()
    tree = trainer.tree
    original_reduce = trainer.reduce_per_replica
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    @functools.wraps(original_reduce)
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return original_reduce(values, strategy, reduction)

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

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    _applied = True
    logger.info(
        "Applied keras-transfer's MultiWorkerMirroredStrategy fix to Keras %s "
        "(keras-team/keras#20585 and scalar step-log reduction).",
        keras.__version__,
    )
    return True
