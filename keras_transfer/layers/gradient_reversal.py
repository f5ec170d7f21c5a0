"""The gradient reversal layer of Ganin et al. 2016 (DANN)."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf


def _check_lambda(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Expected lambda_ to be a number >= 0. Received: lambda_={value!r}"
        ) from None
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(
            f"Expected lambda_ to be a number >= 0. Received: lambda_={value}"
        )
    return value


@tf.custom_gradient
def _reverse_gradient(x, lambda_):
    """Identity forward; backward multiplies the upstream gradient by ``-lambda_``.

    ``lambda_`` is a positional tensor (not a keyword, not a variable read inside the
    function): ``tf.custom_gradient`` rejects both of those.
    """

    def grad(upstream):
        return -tf.cast(lambda_, upstream.dtype) * upstream, tf.zeros_like(lambda_)

    return tf.identity(x), grad


class SchedulableLambda:
    """Mixin: a schedulable trade-off weight ``lambda_`` in a non-trainable variable.

    The one home of the λ that `GradientReversal`, the discrepancy methods (CORAL,
    MMD) and the target-prediction methods (MCC, BNM, ...) expose: changing it during
    ``fit`` needs no retracing, `DomainLambdaScheduler` and `AdaptationController`
    find it through ``_schedulable_lambda``, and ``get_config`` keeps the initial
    value. Mix it in before ``keras.layers.Layer``.
    """

    _schedulable_lambda = True

    def __init__(self, lambda_: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial_lambda = _check_lambda(lambda_)
        self._lambda = self.add_weight(
            name="lambda",
            shape=(),
            initializer=keras.initializers.Constant(self._initial_lambda),
            trainable=False,
            dtype="float32",
        )

    @property
    def lambda_(self) -> float:
        """The current weight (a Python float)."""
        return float(np.asarray(self._lambda.numpy()))

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self._lambda.assign(_check_lambda(value))

    @property
    def lambda_variable(self) -> Any:
        """The non-trainable variable holding ``lambda_``."""
        return self._lambda

    def weighted(self, loss):
        """``lambda_ * loss`` in the loss's dtype."""
        return keras.ops.cast(self._lambda, loss.dtype) * loss

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"lambda_": self._initial_lambda})
        return config


@keras.saving.register_keras_serializable(package="keras_transfer")
class GradientReversal(SchedulableLambda, keras.layers.Layer):
    """Identity in the forward pass; multiplies gradients by ``-lambda_`` backward.

    Placed between a feature extractor and a domain discriminator, it lets one
    optimizer step train the discriminator to tell domains apart while pushing the
    features to make them indistinguishable (Ganin et al. 2016). ``lambda_`` is stored
    in a non-trainable weight, so `keras_transfer.adaptation.DomainLambdaScheduler` (or
    any callback) can change it during `fit` without retracing. At inference the layer
    is a plain identity.

    Args:
        lambda_: float. Gradient scale, >= 0. Defaults to 1.0.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``...).

    Raises:
        ValueError: If ``lambda_`` is negative or not a number.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.layers import GradientReversal
    layer = GradientReversal(lambda_=0.5)
    x = np.ones((2, 3), "float32")
    assert np.allclose(layer(x), x)
    layer.lambda_ = 0.8
    assert abs(layer.lambda_ - 0.8) < 1e-6
    ```

    References:
        Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR.
    """

    def __init__(self, lambda_: float = 1.0, **kwargs: Any) -> None:
        super().__init__(lambda_=lambda_, **kwargs)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if isinstance(inputs, (list, tuple, dict)):
            return tf.nest.map_structure(self._reverse, inputs)
        return self._reverse(inputs)

    def _reverse(self, x):
        return _reverse_gradient(x, tf.convert_to_tensor(self._lambda.value))

    def compute_output_shape(self, input_shape):
        return input_shape
