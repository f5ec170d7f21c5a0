"""Discrepancy losses between source and target feature batches (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from keras_transfer._backend import keras

ops = keras.ops


def coral_loss(source_features, target_features):
    """DeepCORAL loss: squared Frobenius distance of feature covariances / (4 d^2).

    Args:
        source_features: Tensor of shape ``(n_s, d)``.
        target_features: Tensor of shape ``(n_t, d)``.

    Returns:
        A scalar tensor.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import coral_loss
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    assert float(coral_loss(x, x)) < 1e-6
    ```

    References:
        Sun & Saenko 2016, "Deep CORAL: Correlation Alignment for Deep Domain
        Adaptation", ECCV workshops.
    """
    source_features = ops.convert_to_tensor(source_features)
    target_features = ops.convert_to_tensor(target_features)
    d = ops.cast(ops.shape(source_features)[-1], source_features.dtype)

    def covariance(x):
        n = ops.cast(ops.shape(x)[0], x.dtype)
        centred = x - ops.mean(x, axis=0, keepdims=True)
        return ops.matmul(ops.transpose(centred), centred) / ops.maximum(n - 1.0, 1.0)

    diff = covariance(source_features) - covariance(target_features)
    return ops.sum(ops.square(diff)) / (4.0 * d * d)


def _squared_distances(x, y):
    xx = ops.sum(ops.square(x), axis=1, keepdims=True)
    yy = ops.sum(ops.square(y), axis=1, keepdims=True)
    return ops.maximum(
        xx - 2.0 * ops.matmul(x, ops.transpose(y)) + ops.transpose(yy), 0.0
    )


def mmd_loss(
    source_features,
    target_features,
    kernel_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
):
    """Multi-kernel maximum mean discrepancy (biased estimate, Gaussian kernels).

    The kernel bandwidths are ``multiplier * mean pairwise squared distance`` of the
    joint batch (the gradient does not flow through the bandwidth), the usual choice
    of DAN implementations; the kernels are summed with equal weights.

    Args:
        source_features: Tensor of shape ``(n_s, d)``.
        target_features: Tensor of shape ``(n_t, d)``.
        kernel_multipliers: sequence of float. Bandwidth multipliers, one kernel each.
            Defaults to ``(0.25, 0.5, 1, 2, 4)``.

    Returns:
        A scalar tensor (>= 0 up to rounding).

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import mmd_loss
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 3)).astype("float32")
    assert float(mmd_loss(a, a + 3.0)) > float(mmd_loss(a, a))
    ```

    References:
        Long et al. 2015, "Learning Transferable Features with Deep Adaptation
        Networks" (DAN), ICML.
    """
    if not kernel_multipliers or any(m <= 0 for m in kernel_multipliers):
        raise ValueError(
            "Expected kernel_multipliers to be a non-empty sequence of positive "
            f"numbers. Received: kernel_multipliers={kernel_multipliers}"
        )
    xs = ops.convert_to_tensor(source_features)
    xt = ops.convert_to_tensor(target_features)
    joint = ops.concatenate([xs, xt], axis=0)
    d2 = _squared_distances(joint, joint)
    n = ops.cast(ops.shape(joint)[0], d2.dtype)
    bandwidth = ops.stop_gradient(ops.sum(d2) / ops.maximum(n * n - n, 1.0))
    bandwidth = ops.maximum(bandwidth, 1e-6)
    kernel = sum(ops.exp(-d2 / (bandwidth * m)) for m in kernel_multipliers)
    ns = ops.shape(xs)[0]
    k_ss = kernel[:ns, :ns]
    k_tt = kernel[ns:, ns:]
    k_st = kernel[:ns, ns:]
    return ops.mean(k_ss) + ops.mean(k_tt) - 2.0 * ops.mean(k_st)


def entropy(probabilities, axis: int = -1):
    """Shannon entropy (nats) of probability vectors along ``axis``."""
    p = ops.convert_to_tensor(probabilities)
    return -ops.sum(p * ops.log(ops.clip(p, 1e-7, 1.0)), axis=axis)
