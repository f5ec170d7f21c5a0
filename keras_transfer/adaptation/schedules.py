"""The DANN paper's schedules: λ warm-up (a callback) and learning-rate annealing."""

from __future__ import annotations

import math
from typing import Any

from keras_transfer._backend import keras
from keras_transfer._deprecation import deprecated_property, renamed_arguments


@renamed_arguments(max_value="lambda_max")
def dann_lambda(progress: float, gamma: float = 10.0, lambda_max: float = 1.0) -> float:
    """``lambda_max * (2 / (1 + exp(-gamma * p)) - 1)`` for progress ``p`` in [0, 1].

    Args:
        progress: float. Training progress, clipped to [0, 1].
        gamma: float. Steepness; 10 in Ganin et al. 2016. Defaults to 10.0.
        lambda_max: float. Value approached at the end (the name used by
            `adapt`'s recipe and the CLI's ``adaptation.lambda_max``; ``max_value``
            is a deprecated alias). Defaults to 1.0.

    Returns:
        float. 0 at ``p = 0``, rising towards ``lambda_max``.

    Examples:
    ```python
    from keras_transfer.adaptation import dann_lambda
    assert dann_lambda(0.0) == 0.0
    assert abs(dann_lambda(1.0) - 0.9999092) < 1e-6
    assert abs(dann_lambda(1.0, lambda_max=0.5) - 0.4999546) < 1e-6
    ```
    """
    p = min(max(float(progress), 0.0), 1.0)
    return float(lambda_max) * (2.0 / (1.0 + math.exp(-float(gamma) * p)) - 1.0)


def _schedulable_layers(model: Any) -> list:
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [layer for layer in layers if getattr(layer, "_schedulable_lambda", False)]


class DomainLambdaScheduler(keras.callbacks.Callback):
    """Sets λ of every `GradientReversal` / discrepancy method each batch.

    λ_p = ``lambda_max * (2 / (1 + exp(-gamma p)) - 1)``, where ``p`` goes from 0 to 1
    over the training steps of the `fit` call (``epochs * steps_per_epoch``, or
    ``total_steps``). The current value is logged as ``"lambda"``. Works on any model
    holding `GradientReversal` layers, not only `DomainAdaptationModel`.

    Args:
        gamma: float. Steepness; the paper uses 10. Defaults to 10.0.
        lambda_max: float. Final λ (``max_value`` is a deprecated alias).
            Defaults to 1.0.
        total_steps: int or None. Steps over which ``p`` goes to 1; inferred from
            `fit` when None. Defaults to None.

    Raises:
        ValueError: For a negative ``lambda_max`` or ``gamma``, or when the step
            count is unknown.

    Examples:
    ```python
    from keras_transfer.adaptation import DomainLambdaScheduler
    scheduler = DomainLambdaScheduler(lambda_max=0.5, total_steps=100)
    assert scheduler.lambda_max == 0.5
    ```

    References:
        Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR.
    """

    max_value = deprecated_property("max_value", "lambda_max")

    @renamed_arguments(max_value="lambda_max")
    def __init__(
        self,
        gamma: float = 10.0,
        lambda_max: float = 1.0,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        if gamma < 0 or lambda_max < 0:
            raise ValueError(
                "Expected gamma >= 0 and lambda_max >= 0. "
                f"Received: gamma={gamma}, lambda_max={lambda_max}"
            )
        self.gamma = float(gamma)
        self.lambda_max = float(lambda_max)
        self.total_steps = total_steps
        self._step = 0
        self._total = 1
        self._layers: list = []
        self.value = 0.0

    def on_train_begin(self, logs=None):
        self._step = 0
        total = self.total_steps
        if total is None:
            steps, epochs = self.params.get("steps"), self.params.get("epochs")
            if not steps:
                raise ValueError(
                    "DomainLambdaScheduler cannot infer the number of training steps "
                    "(dataset of unknown length): pass total_steps= or steps_per_epoch."
                )
            total = int(steps) * int(epochs)
        self._total = max(int(total), 1)
        self._layers = _schedulable_layers(self.model)
        if not self._layers:
            raise ValueError(
                "DomainLambdaScheduler found no GradientReversal layer or discrepancy "
                f"method in model {self.model.name!r}."
            )

    def on_train_batch_begin(self, batch, logs=None):
        self.value = dann_lambda(self._step / self._total, self.gamma, self.lambda_max)
        for layer in self._layers:
            layer.lambda_ = self.value
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lambda"] = self.value


@keras.saving.register_keras_serializable(package="keras_transfer")
class DANNLearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The DANN learning-rate annealing ``μ_p = μ0 / (1 + alpha p) ** beta``.

    The annealing of Ganin et al. 2016 (μ0 = 0.01, α = 10, β = 0.75).

    Args:
        initial_learning_rate: float. μ0. Defaults to 0.01.
        decay_steps: int. Steps at which ``p`` reaches 1 (then stays there).
        alpha: float. Defaults to 10.0.
        beta: float. Defaults to 0.75.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import DANNLearningRateSchedule
    schedule = DANNLearningRateSchedule(0.01, decay_steps=100)
    assert abs(float(schedule(100)) - 0.01 / 11 ** 0.75) < 1e-7
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    ```
    """

    def __init__(
        self,
        initial_learning_rate: float = 0.01,
        decay_steps: int = 1000,
        alpha: float = 10.0,
        beta: float = 0.75,
    ) -> None:
        if initial_learning_rate <= 0 or decay_steps < 1 or alpha < 0 or beta < 0:
            raise ValueError(
                "Expected initial_learning_rate > 0, decay_steps >= 1, alpha >= 0, "
                f"beta >= 0. Received: initial_learning_rate={initial_learning_rate}, "
                f"decay_steps={decay_steps}, alpha={alpha}, beta={beta}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def __call__(self, step):
        ops = keras.ops
        p = ops.minimum(ops.cast(step, "float32") / float(self.decay_steps), 1.0)
        return self.initial_learning_rate / ops.power(1.0 + self.alpha * p, self.beta)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "beta": self.beta,
        }
