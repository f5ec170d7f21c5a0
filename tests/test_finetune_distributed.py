"""fine_tune under MirroredStrategy over 2 logical CPU devices (own process)."""

import subprocess
import sys
import textwrap

import pytest

CODE = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_transfer import build_classifier, fine_tune
    from keras_transfer.distribute import get_strategy
    strategy = get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    model = build_classifier("keras_applications:MobileNetV3Small", 2, weights=None,
                             input_shape=(32, 32, 3), strategy=strategy)
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 2
    h = fine_tune(model, (x, y), head_epochs=1, fine_tune_epochs=1, unfreeze_depth=2,
                  strategy=strategy, verbose=0)
    assert h.epoch == [0, 1], h.epoch
    # optimizer state was created in the strategy scope: one copy per replica
    assert len(model.optimizer.iterations.value.values) == 2
    try:
        other = tf.distribute.OneDeviceStrategy("/cpu:0")
        fine_tune(model, (x, y), strategy=other, verbose=0)
    except ValueError as e:
        assert "was built under MirroredStrategy" in str(e)
    else:
        raise AssertionError("no error for a mismatched strategy")
    print("OK")
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
    return out


@pytest.mark.large
def test_fine_tune_under_mirrored_strategy():
    _run(CODE)


ONE_REPLICA = textwrap.dedent(
    """
    import numpy as np
    from keras_transfer import build_classifier, fine_tune
    from keras_transfer.distribute import get_strategy
    strategy = get_strategy("mirrored")  # one CPU: one replica, as on a 1-GPU box
    assert strategy.num_replicas_in_sync == 1
    model = build_classifier("keras_applications:MobileNetV3Small", 2, weights=None,
                             input_shape=(32, 32, 3), strategy=strategy)
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    h = fine_tune(model, (x, np.arange(16) % 2), head_epochs=1, fine_tune_epochs=1,
                  strategy=strategy, verbose=2)
    assert h.epoch == [0, 1], h.epoch
    print("OK")
    """
)


@pytest.mark.large
def test_fine_tune_under_a_one_replica_mirrored_strategy_caches_the_head_phase():
    # The cached head phase's optimizer slots used to be created outside the
    # strategy's scope: RuntimeError "Need to be inside with strategy.scope()".
    out = _run(ONE_REPLICA)
    assert "head phase on cached features" in out.stdout + out.stderr
