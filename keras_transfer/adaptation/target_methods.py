"""Alignment methods that read only the target's class predictions.

They need no discriminator and no kernel bandwidth, which makes them the methods that
need the least tuning at small scale: Minimum Class Confusion (MCC), information
maximisation (entropy minimisation with a diversity term), Batch Nuclear-norm
Maximisation (BNM), and self-training on confident, class-balanced pseudo-labels with
a weak/strong view consistency in the spirit of FixMatch. Each plugs into the one
``train_step`` of `DomainAdaptationModel` like DANN or CORAL does, and its weight is a
schedulable ``lambda_``.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.adaptation.losses import entropy
from keras_transfer.adaptation.methods import AlignmentMethod, _LambdaWeight

ops = keras.ops


class _TargetPredictionMethod(_LambdaWeight, AlignmentMethod):
    """Base: ``lambda_ * loss(target_logits)`` (the features are not used)."""

    needs_logits = True

    def build(self, input_shape):
        self.built = True

    def _target_loss(self, target_logits):
        raise NotImplementedError

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        loss = self._target_loss(ops.cast(lt, "float32"))
        return self.weighted(loss), loss, None


@keras.saving.register_keras_serializable(package="keras_transfer")
class MinimumClassConfusion(_TargetPredictionMethod):
    """MCC: minimises the between-class confusion of target predictions.

    With ``p = softmax(logits / temperature)`` on a target batch, examples weighted by
    ``1 + exp(-H(p))`` (normalised to sum to the batch size), the class correlation
    ``C = pᵀ W p`` is normalised per column and the loss is the off-diagonal mass
    divided by the number of classes. It needs no extra network and works with any
    encoder.

    Args:
        lambda_: float. Loss weight. Defaults to 1.0.
        temperature: float. Softmax temperature (2.5 in the paper). Defaults to 2.5.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import MinimumClassConfusion
    mcc = MinimumClassConfusion()
    distinct = np.eye(3, dtype="float32") * 10  # confident, distinct classes
    confused = np.ones((3, 3), dtype="float32")  # every class equally likely
    _, low, _ = mcc.alignment_loss(None, None, None, distinct, True)
    _, high, _ = mcc.alignment_loss(None, None, None, confused, True)
    assert float(low) < 0.1 < float(high)
    ```

    References:
        Jin et al. 2020, "Minimum Class Confusion for Versatile Domain Adaptation",
        ECCV.
    """

    def __init__(
        self, lambda_: float = 1.0, temperature: float = 2.5, **kwargs: Any
    ) -> None:
        super().__init__(lambda_=lambda_, **kwargs)
        if not temperature > 0:
            raise ValueError(
                f"Expected temperature > 0. Received: temperature={temperature}"
            )
        self.temperature = float(temperature)

    def _target_loss(self, logits):
        probs = ops.softmax(logits / self.temperature, axis=-1)
        n = ops.cast(ops.shape(probs)[0], probs.dtype)
        k = ops.cast(ops.shape(probs)[1], probs.dtype)
        weights = 1.0 + ops.exp(-entropy(ops.stop_gradient(probs)))
        weights = n * weights / ops.sum(weights)
        confusion = ops.matmul(
            ops.transpose(probs * ops.expand_dims(weights, 1)), probs
        )
        confusion = confusion / ops.sum(confusion, axis=0, keepdims=True)
        return (ops.sum(confusion) - ops.trace(confusion)) / k

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_transfer")
class EntropyMinimization(_TargetPredictionMethod):
    """Entropy minimisation of target predictions, with a diversity term.

    ``mean(H(p_t)) - diversity * H(mean(p_t))``: confident target predictions that
    still use every class (information maximisation, as in SHOT). With
    ``diversity=0`` it is plain entropy minimisation (Grandvalet & Bengio 2004), which
    can collapse onto one class.

    Args:
        lambda_: float. Loss weight. Defaults to 1.0.
        diversity: float. Weight of the batch-mean entropy term. Defaults to 1.0.

    References:
        Liang et al. 2020, "Do We Really Need to Access the Source Data? (SHOT)", ICML.
    """

    def __init__(self, lambda_: float = 1.0, diversity: float = 1.0, **kwargs) -> None:
        super().__init__(lambda_=lambda_, **kwargs)
        if diversity < 0:
            raise ValueError(
                f"Expected diversity >= 0. Received: diversity={diversity}"
            )
        self.diversity = float(diversity)

    def _target_loss(self, logits):
        probs = ops.softmax(logits, axis=-1)
        loss = ops.mean(entropy(probs))
        if self.diversity:
            loss = loss - self.diversity * entropy(ops.mean(probs, axis=0))
        return loss

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "diversity": self.diversity}


@keras.saving.register_keras_serializable(package="keras_transfer")
class BatchNuclearNorm(_TargetPredictionMethod):
    """BNM: maximises the nuclear norm of the target prediction matrix.

    ``-||softmax(logits)||_* / batch``: confident and diverse predictions at once.

    Args:
        lambda_: float. Loss weight. Defaults to 1.0.

    References:
        Cui et al. 2020, "Towards Discriminability and Diversity: Batch Nuclear-norm
        Maximization under Label Insufficient Situations", CVPR.
    """

    def _target_loss(self, logits):
        probs = ops.softmax(logits, axis=-1)
        singular = ops.svd(probs, compute_uv=False)
        return -ops.sum(singular) / ops.cast(ops.shape(probs)[0], probs.dtype)


@keras.saving.register_keras_serializable(package="keras_transfer")
class SelfTraining(_TargetPredictionMethod):
    """Self-training on confident target pseudo-labels, weak/strong consistency.

    Pseudo-labels come from the target batch as the model sees it (the weak view,
    gradients stopped); the loss is the cross-entropy of those labels on a strongly
    augmented view of the same batch (FixMatch), or on the weak view when the model
    has no strong view. Only predictions above a class-balanced threshold count:
    ``threshold * beta_c / max(beta)``, where ``beta_c`` is a running share of
    confident predictions of class ``c`` (FlexMatch's curriculum), so rare classes
    are not starved. A diversity term keeps the pseudo-labels from collapsing.

    Args:
        lambda_: float. Loss weight. Defaults to 1.0.
        threshold: float in (0, 1). Confidence threshold of the best-learned class.
            Defaults to 0.9.
        momentum: float. Momentum of the running class shares. Defaults to 0.99.
        diversity: float. Weight of ``-H(mean(p_t))``. Defaults to 0.1.

    References:
        Sohn et al. 2020, "FixMatch", NeurIPS; Zhang et al. 2021, "FlexMatch",
        NeurIPS.
    """

    needs_strong_view = True
    needs_logits = True
    accuracy_name = "pseudo_label_rate"

    def __init__(
        self,
        lambda_: float = 1.0,
        threshold: float = 0.9,
        momentum: float = 0.99,
        diversity: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(lambda_=lambda_, **kwargs)
        if not 0.0 < threshold < 1.0 or not 0.0 <= momentum < 1.0 or diversity < 0:
            raise ValueError(
                "Expected 0 < threshold < 1, 0 <= momentum < 1 and diversity >= 0. "
                f"Received: threshold={threshold}, momentum={momentum}, "
                f"diversity={diversity}"
            )
        self.threshold = float(threshold)
        self.momentum = float(momentum)
        self.diversity = float(diversity)

    def build(self, input_shape):
        num_classes = int(input_shape[1][-1])
        self.class_share = self.add_weight(
            name="class_share",
            shape=(num_classes,),
            initializer=keras.initializers.Constant(1.0 / num_classes),
            trainable=False,
            dtype="float32",
        )
        self.built = True

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        lt = ops.cast(lt, "float32")
        strong = extras.get("target_logits_strong")
        strong = lt if strong is None else ops.cast(strong, "float32")
        probs = ops.stop_gradient(ops.softmax(lt, axis=-1))
        confidence = ops.max(probs, axis=-1)
        labels = ops.argmax(probs, axis=-1)
        share = ops.convert_to_tensor(self.class_share)
        thresholds = self.threshold * share / ops.max(share)
        # FlexMatch's warp: never below half the threshold.
        thresholds = ops.maximum(thresholds, self.threshold / 2.0)
        mask = ops.cast(confidence >= ops.take(thresholds, labels), "float32")
        if training:
            onehot = ops.one_hot(labels, ops.shape(probs)[-1]) * ops.expand_dims(
                ops.cast(confidence >= self.threshold, "float32"), 1
            )
            counts = ops.sum(onehot, axis=0)
            new = counts / ops.maximum(ops.sum(counts), 1.0)
            updated = ops.where(
                ops.sum(counts) > 0,
                self.momentum * share + (1.0 - self.momentum) * new,
                share,
            )
            self.class_share.assign(updated)
        ce = ops.sparse_categorical_crossentropy(labels, strong, from_logits=True)
        loss = ops.sum(mask * ce) / ops.cast(ops.shape(ce)[0], ce.dtype)
        if self.diversity:
            mean = ops.mean(ops.softmax(strong, axis=-1), axis=0)
            loss = loss - self.diversity * entropy(mean)
        return self.weighted(loss), loss, ops.mean(mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "momentum": self.momentum,
            "diversity": self.diversity,
        }


def _register() -> None:
    from keras_transfer.adaptation.methods import register_alignment_method

    for name, cls in (
        ("mcc", MinimumClassConfusion),
        ("entropy", EntropyMinimization),
        ("bnm", BatchNuclearNorm),
        ("self_training", SelfTraining),
    ):
        register_alignment_method(name, cls)


_register()

# the class-weighted methods register their names (iwdan, iwcdan) on import too
import keras_transfer.adaptation.weighted  # noqa: E402, F401
