"""Alignment methods: layers that turn source/target features into a domain loss.

Every method plugs into the one training step of `DomainAdaptationModel`: it receives
the features and class logits of a source batch and a target batch and returns
``(loss_to_add, loss_to_log, domain_accuracy_or_None)``. Adversarial methods (DANN,
CDAN) own a `GradientReversal` layer and a discriminator; discrepancy methods
(DeepCORAL, MMD) multiply their loss by a non-trainable trade-off weight. Either way
the weight is exposed as ``lambda_`` so `DomainLambdaScheduler` can schedule it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.adaptation.losses import coral_loss, entropy, mmd_loss
from keras_transfer.layers import GradientReversal
from keras_transfer.layers.gradient_reversal import SchedulableLambda

ops = keras.ops


def _check_units(hidden_units: Sequence[int]) -> tuple[int, ...]:
    units = tuple(int(u) for u in hidden_units)
    if any(u <= 0 for u in units):
        raise ValueError(
            "Expected hidden_units to be a sequence of positive ints. "
            f"Received: hidden_units={hidden_units}"
        )
    return units


class AlignmentMethod(keras.layers.Layer):
    """Base class of alignment methods (see the module docstring).

    Subclasses implement `alignment_loss` and expose a settable ``lambda_``.
    """

    adversarial = False

    needs_logits = False
    needs_strong_view = False
    accuracy_name = "domain_accuracy"

    def alignment_loss(
        self,
        source_features,
        target_features,
        source_logits,
        target_logits,
        training,
        **extras,
    ):
        """Returns ``(loss_to_add, loss_to_log, accuracy_or_None)``.

        ``extras`` may hold ``target_logits_strong`` (logits of a strongly augmented
        view of the target batch) for methods with ``needs_strong_view``, and
        ``source_labels`` for methods with ``needs_source_labels``.
        """
        raise NotImplementedError

    def call(self, inputs, training=None):  # pragma: no cover - not used directly
        return inputs


class _Adversarial(AlignmentMethod):
    adversarial = True

    def __init__(
        self,
        hidden_units: Sequence[int] = (64,),
        dropout: float = 0.0,
        lambda_: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_units = _check_units(hidden_units)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1). Received: dropout={dropout}")
        self.dropout = float(dropout)
        self.grl = GradientReversal(lambda_=lambda_, name="gradient_reversal")
        layers = []
        for i, units in enumerate(self.hidden_units):
            layers.append(
                keras.layers.Dense(units, activation="relu", name=f"disc_{i}")
            )
            if self.dropout:
                layers.append(keras.layers.Dropout(self.dropout))
        layers.append(keras.layers.Dense(1, name="domain_logit"))
        self.discriminator = keras.Sequential(layers, name="discriminator")

    @property
    def lambda_(self) -> float:
        return self.grl.lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self.grl.lambda_ = value

    def _discriminate(self, inputs, num_source, weights=None, training=None):
        logits = ops.squeeze(
            self.discriminator(self.grl(inputs), training=training), -1
        )
        n = ops.shape(logits)[0]
        labels = ops.cast(ops.arange(n) >= num_source, logits.dtype)
        bce = ops.binary_crossentropy(labels, logits, from_logits=True)
        loss = ops.mean(bce) if weights is None else ops.sum(weights * bce)
        accuracy = ops.mean(ops.cast(ops.equal(logits > 0, labels > 0.5), logits.dtype))
        return loss, accuracy

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "dropout": self.dropout,
                "lambda_": self.grl._initial_lambda,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_transfer")
class DomainAdversarial(_Adversarial):
    """DANN: a domain discriminator on the features behind a `GradientReversal`.

    Args:
        hidden_units: sequence of int. Discriminator hidden layer sizes.
            Defaults to ``(64,)``.
        dropout: float. Dropout after each hidden layer. Defaults to 0.0.
        lambda_: float. Initial gradient reversal scale. Defaults to 1.0.

    References:
        Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR.
    """

    def build(self, input_shape):
        self.discriminator.build(input_shape)
        self.built = True

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        features = ops.concatenate([fs, ft], axis=0)
        loss, accuracy = self._discriminate(features, ops.shape(fs)[0], None, training)
        return loss, loss, accuracy


@keras.saving.register_keras_serializable(package="keras_transfer")
class ConditionalDomainAdversarial(_Adversarial):
    """CDAN(+E): the discriminator sees features conditioned on class predictions.

    The discriminator input is the multilinear map ``softmax(logits) ⊗ features``
    (flattened), or its randomized version ``(R_f f) ⊙ (R_g g) / sqrt(dim)`` when
    ``features * classes`` exceeds ``max_multilinear_dim``. With
    ``entropy_conditioning`` (CDAN+E), examples with confident predictions weigh
    more: ``w = 1 + exp(-H(g))``, normalized within each domain.

    Args:
        hidden_units: sequence of int. Discriminator hidden sizes. Defaults to (64,).
        dropout: float. Discriminator dropout. Defaults to 0.0.
        lambda_: float. Initial gradient reversal scale. Defaults to 1.0.
        entropy_conditioning: bool. CDAN+E weighting. Defaults to True.
        max_multilinear_dim: int. Above this size the randomized map is used.
            Defaults to 4096.
        random_dim: int. Size of the randomized map. Defaults to 1024.

    References:
        Long et al. 2018, "Conditional Adversarial Domain Adaptation", NeurIPS.
    """

    needs_logits = True

    def __init__(
        self,
        hidden_units: Sequence[int] = (64,),
        dropout: float = 0.0,
        lambda_: float = 1.0,
        entropy_conditioning: bool = True,
        max_multilinear_dim: int = 4096,
        random_dim: int = 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(hidden_units, dropout, lambda_, **kwargs)
        self.entropy_conditioning = bool(entropy_conditioning)
        self.max_multilinear_dim = int(max_multilinear_dim)
        self.random_dim = int(random_dim)
        self._randomized = False

    def build(self, input_shape):
        feature_dim, num_classes = int(input_shape[0][-1]), int(input_shape[1][-1])
        self._randomized = feature_dim * num_classes > self.max_multilinear_dim
        if self._randomized:
            init = keras.initializers.RandomNormal(seed=0)
            self.random_f = self.add_weight(
                name="random_f",
                shape=(feature_dim, self.random_dim),
                initializer=init,
                trainable=False,
            )
            self.random_g = self.add_weight(
                name="random_g",
                shape=(num_classes, self.random_dim),
                initializer=init,
                trainable=False,
            )
            self.discriminator.build((None, self.random_dim))
        else:
            self.discriminator.build((None, feature_dim * num_classes))
        self.built = True

    def _multilinear(self, features, probs):
        if self._randomized:
            mapped = ops.matmul(features, self.random_f) * ops.matmul(
                probs, self.random_g
            )
            return mapped / math.sqrt(self.random_dim)
        outer = ops.expand_dims(probs, 2) * ops.expand_dims(features, 1)
        return ops.reshape(outer, (ops.shape(features)[0], -1))

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        return self._conditional_loss(fs, ft, ls, lt, training)

    def _conditional_loss(self, fs, ft, ls, lt, training, source_weights=None):
        """CDAN(+E); ``source_weights`` (per source example) scale the source side."""
        probs = ops.stop_gradient(ops.softmax(ops.concatenate([ls, lt], axis=0)))
        joint = self._multilinear(ops.concatenate([fs, ft], axis=0), probs)
        weights, ns = None, ops.shape(fs)[0]
        if self.entropy_conditioning or source_weights is not None:
            w = 1.0 + ops.exp(-entropy(probs))
            w = w if self.entropy_conditioning else ops.ones_like(w)
            ws = w[:ns] if source_weights is None else w[:ns] * source_weights
            ws, wt = ws / ops.sum(ws), w[ns:] / ops.sum(w[ns:])
            weights = ops.stop_gradient(ops.concatenate([ws, wt], axis=0) / 2.0)
        loss, accuracy = self._discriminate(joint, ns, weights, training)
        return loss, loss, accuracy

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "entropy_conditioning": self.entropy_conditioning,
                "max_multilinear_dim": self.max_multilinear_dim,
                "random_dim": self.random_dim,
            }
        )
        return config


# The schedulable λ has one home, next to GradientReversal (layers/).
_LambdaWeight = SchedulableLambda


class _Discrepancy(_LambdaWeight, AlignmentMethod):
    _loss_fn: Callable = staticmethod(coral_loss)

    def build(self, input_shape):
        self.built = True

    def _discrepancy(self, fs, ft):
        return self._loss_fn(fs, ft)

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        loss = self._discrepancy(fs, ft)
        return self.weighted(loss), loss, None


@keras.saving.register_keras_serializable(package="keras_transfer")
class CORALAlignment(_Discrepancy):
    """DeepCORAL: ``lambda_ * coral_loss(source_features, target_features)``.

    Args:
        lambda_: float. Trade-off weight of the CORAL loss. Defaults to 1.0.

    References:
        Sun & Saenko 2016, "Deep CORAL", ECCV workshops.
    """

    _loss_fn = staticmethod(coral_loss)


@keras.saving.register_keras_serializable(package="keras_transfer")
class MMDAlignment(_Discrepancy):
    """Multi-kernel MMD (DAN): ``lambda_ * mmd_loss(source, target)``.

    Args:
        lambda_: float. Trade-off weight. Defaults to 1.0.
        kernel_multipliers: sequence of float. Gaussian bandwidth multipliers.
            Defaults to ``(0.25, 0.5, 1, 2, 4)``.

    References:
        Long et al. 2015, "Learning Transferable Features with Deep Adaptation
        Networks", ICML.
    """

    def __init__(
        self,
        lambda_: float = 1.0,
        kernel_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(lambda_, **kwargs)
        self.kernel_multipliers = tuple(float(m) for m in kernel_multipliers)

    def _discrepancy(self, fs, ft):
        return mmd_loss(fs, ft, self.kernel_multipliers)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kernel_multipliers": list(self.kernel_multipliers)})
        return config


@keras.saving.register_keras_serializable(package="keras_transfer")
class JointForward(AlignmentMethod):
    """No alignment loss, but the target batch goes through the network too.

    `adapt`'s warm-up uses it so that BatchNormalization layers (the bottleneck's,
    the encoder's) see the same joint source+target batches in the warm-up as in
    the adaptation that follows: switching the batch statistics between phases
    would shift the features under the classifier.
    """

    def build(self, input_shape):
        self.built = True

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        zero = ops.zeros((), dtype=fs.dtype)
        return zero, None, None


_METHODS: dict[str, type[AlignmentMethod]] = {
    "dann": DomainAdversarial,
    "cdan": ConditionalDomainAdversarial,
    "coral": CORALAlignment,
    "mmd": MMDAlignment,
}


def register_alignment_method(name: str, cls: type[AlignmentMethod]) -> None:
    """Registers an `AlignmentMethod` subclass under a name usable as ``method=``.

    Args:
        name: str. The name (lower case).
        cls: type. A subclass of `AlignmentMethod`.

    Raises:
        ValueError: If ``cls`` is not an `AlignmentMethod` subclass.
    """
    if not (isinstance(cls, type) and issubclass(cls, AlignmentMethod)):
        raise ValueError(
            f"Expected cls to be a subclass of AlignmentMethod. Received: cls={cls!r}"
        )
    _METHODS[name.lower()] = cls


def list_alignment_methods() -> list[str]:
    """Names accepted by ``method=`` (besides ``"source_only"``)."""
    import keras_transfer.adaptation.target_methods  # noqa: F401  (registers names)

    return sorted(_METHODS)


def get_alignment_method(method: Any, **kwargs: Any) -> AlignmentMethod | None:
    """Resolves ``method`` (a name, an `AlignmentMethod`, or None) to a layer.

    Args:
        method: str, `AlignmentMethod` or None. ``None``/``"source_only"`` means no
            alignment; names joined with ``+`` (``"dann+mcc"``) build a
            `CombinedAlignment`.
        **kwargs: Constructor arguments when ``method`` is a name.

    Returns:
        An `AlignmentMethod` instance or None.

    Raises:
        ValueError: For an unknown name or type.
    """
    import keras_transfer.adaptation.target_methods  # noqa: F401  (registers names)

    if method is None or method == "source_only":
        return None
    if isinstance(method, AlignmentMethod):
        return method
    if isinstance(method, str) and method.lower() in _METHODS:
        return _METHODS[method.lower()](**kwargs)
    if isinstance(method, str) and "+" in method:
        from keras_transfer.adaptation.combined import (
            CombinedAlignment,
            build_parts,
            split_method_name,
        )

        parts = build_parts(split_method_name(method), **kwargs)
        return CombinedAlignment(parts, name=method.lower().replace("+", "_"))
    raise ValueError(
        "Expected method to be None, 'source_only', an AlignmentMethod, or one of "
        f"{list_alignment_methods()}. Received: method={method!r}"
    )
