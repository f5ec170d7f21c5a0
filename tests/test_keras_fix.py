"""keras_fix: each patch guarded on its own; a changed private signature fails loudly."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

from keras_transfer.distribute import keras_fix


@pytest.fixture
def fresh(monkeypatch):
    """Undoes any patch at teardown; starts with nothing applied."""
    monkeypatch.delenv("KERAS_TRANSFER_MWMS_FIX", raising=False)
    monkeypatch.setattr(keras_fix, "_applied", set())
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    monkeypatch.setattr(
        trainer.TensorFlowTrainer,
        "_maybe_symbolic_build",
        trainer.TensorFlowTrainer._maybe_symbolic_build,
    )
    return monkeypatch


def _without_bug(monkeypatch, name):
    path, params, _ = keras_fix.PATCHES[name]
    patches = dict(keras_fix.PATCHES)
    patches[name] = (path, params, "text that is not in the Keras source")
    monkeypatch.setattr(keras_fix, "PATCHES", patches)


def test_env_var_forces_both_ways(fresh):
    fresh.setenv("KERAS_TRANSFER_MWMS_FIX", "0")
    assert not keras_fix.needed()
    assert keras_fix.apply() is False and keras_fix.applied_patches() == ()
    fresh.setenv("KERAS_TRANSFER_MWMS_FIX", "1")
    assert all(keras_fix.patch_needed(name) for name in keras_fix.PATCHES)


def test_each_guard_reads_its_own_function(fresh):
    # Keras 3.15.1 has both bugs (STACK_NOTES); a Keras that fixed one leaves the
    # other patch needed.
    assert keras.__version__.startswith("3.15") <= keras_fix.needed()
    before = {name: keras_fix.patch_needed(name) for name in keras_fix.PATCHES}
    patches = dict(keras_fix.PATCHES)
    for name in patches:
        _without_bug(fresh, name)
        assert not keras_fix.patch_needed(name)
        for other in patches:
            if other != name:
                assert keras_fix.patch_needed(other) == before[other]
        fresh.setattr(keras_fix, "PATCHES", patches)


@pytest.mark.parametrize("fixed", ["reduce_per_replica", "maybe_symbolic_build"])
def test_apply_patches_only_what_is_still_broken(fresh, fixed):
    if not keras_fix.needed():
        pytest.skip("installed Keras has neither bug")
    original = {name: keras_fix._target(name) for name in keras_fix.PATCHES}
    _without_bug(fresh, fixed)
    assert keras_fix.apply() is True
    (other,) = [n for n in keras_fix.PATCHES if n != fixed]
    assert keras_fix.applied_patches() == (other,)
    assert keras_fix._target(fixed) is original[fixed]
    assert keras_fix._target(other) is not original[other]
    assert inspect.unwrap(keras_fix._target(other)) is original[other]
    assert keras_fix.apply() is True  # idempotent
    assert keras_fix._target(fixed) is original[fixed]


def test_patched_reduce_is_unchanged_outside_multi_worker(fresh):
    fresh.setenv("KERAS_TRANSFER_MWMS_FIX", "1")
    original = trainer.reduce_per_replica
    values = {"loss": tf.constant(2.0), "acc": tf.constant([0.5, 1.0])}
    strategy = tf.distribute.get_strategy()
    expected = original(values, strategy, "auto")
    keras_fix.apply()
    got = trainer.reduce_per_replica(values, strategy, "auto")
    for key in values:
        np.testing.assert_array_equal(got[key], expected[key])


def test_changed_private_signature_fails_loudly(fresh):
    def reduce_per_replica(values, strategy):  # a Keras that dropped `reduction`
        return values

    with pytest.raises(RuntimeError, match=f"Keras {keras.__version__}") as info:
        keras_fix.check_signature("reduce_per_replica", reduce_per_replica)
    assert "trainer.reduce_per_replica" in str(info.value)
    assert "KERAS_TRANSFER_MWMS_FIX=0" in str(info.value)
    # apply() refuses that patch (forced, since the stand-in has no buggy line).
    fresh.setattr(trainer, "reduce_per_replica", reduce_per_replica)
    fresh.setenv("KERAS_TRANSFER_MWMS_FIX", "1")
    with pytest.raises(RuntimeError, match="reduce_per_replica"):
        keras_fix.apply()
    assert trainer.reduce_per_replica is reduce_per_replica


def test_installed_keras_matches_the_wrapped_signatures():
    # Fails on a Keras upgrade that changes them: the fix must be revisited then.
    for name in keras_fix.PATCHES:
        keras_fix.check_signature(name, keras_fix._target(name))


def test_unknown_patch_name():
    with pytest.raises(ValueError, match="Expected name to be one of"):
        keras_fix.patch_needed("nope")
