"""Unsupervised model selection: Deep Embedded Validation (You et al. 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.adaptation.weighting import importance_weights


def dev_risk(
    source_features: Any,
    source_losses: Any,
    target_features: Any,
    *,
    folds: int = 5,
    seed: int = 0,
    max_weight: float | None = 20.0,
) -> float:
    """Deep Embedded Validation risk: an estimate of the target loss, no target labels.

    Source-validation losses are importance-weighted by a domain classifier on the
    features (`importance_weights`, cross-fitted, clipped, not normalized), and the weights'
    known mean (1) is used as a control variate: ``mean(wL) + η mean(w) − η`` with
    ``η = −Cov(wL, w) / Var(w)``. Lower is better.

    Args:
        source_features: array-like ``(n_s, d)``. Features of labelled source
            validation examples.
        source_losses: array-like ``(n_s,)``. Per-example losses on them.
        target_features: array-like ``(n_t, d)``. Features of unlabelled target data.
        folds: int. Cross-fitting folds of the domain classifier. Defaults to 5.
        seed: int. Fold seed. Defaults to 0.
        max_weight: float or None. Clip of the density ratio. When source and target
            features are nearly separable the unclipped ratios are heavy-tailed and the
            estimate can even turn negative (seen on the digits benchmark); clipping
            bounds its variance. None follows the paper (no clip). Defaults to 20.0.

    Returns:
        float. The DEV risk.

    Raises:
        ValueError: If the number of losses differs from the source examples.

    References:
        You et al. 2019, "Towards Accurate Model Selection in Deep Unsupervised
        Domain Adaptation", ICML.
    """
    losses = np.asarray(source_losses, dtype="float64").reshape(-1)
    if len(losses) != len(source_features):
        raise ValueError(
            f"Expected one loss per source example. Received: {len(losses)} losses "
            f"for {len(source_features)} examples"
        )
    w = importance_weights(
        source_features,
        target_features,
        max_weight=max_weight,
        normalize=False,
        folds=folds,
        seed=seed,
    ).astype("float64")
    weighted = w * losses
    var_w = np.var(w, ddof=1)
    eta = 0.0 if var_w <= 1e-12 else -np.cov(weighted, w)[0, 1] / var_w
    return float(weighted.mean() + eta * w.mean() - eta)


def _feature_model(model: Any, feature_model: Any):
    if feature_model is not None:
        return feature_model
    if hasattr(model, "encoder"):
        return model.encoder
    try:  # a functional classifier: the input of its last layer
        return keras.Model(model.inputs, model.layers[-1].input)
    except (AttributeError, ValueError) as error:
        raise ValueError(
            "Pass feature_model= (a model mapping inputs to features) for model "
            f"{getattr(model, 'name', model)!r}"
        ) from error


def deep_embedded_validation(
    model: Any,
    source_validation: tuple[Any, Any],
    target_x: Any,
    *,
    feature_model: Any = None,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """DEV risk of a classifier (probability outputs) on labelled source validation.

    Args:
        model: keras Model. Outputs class probabilities (`DomainAdaptationModel`,
            its `inference_model()`, or a `build_classifier` model).
        source_validation: tuple ``(x, y)``. Labelled source examples not trained on.
        target_x: array-like. Unlabelled target examples.
        feature_model: keras Model or None. Maps inputs to features; defaults to
            ``model.encoder`` or the input of the model's last layer.
        batch_size: int. Prediction batch size. Defaults to 256.
        seed: int. Fold seed. Defaults to 0.

    Returns:
        float. Lower is better.
    """
    x, y = source_validation
    probs = np.asarray(predict_eagerly(model, x, batch_size))
    y = np.asarray(y).reshape(-1).astype(int)
    losses = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))
    features = _feature_model(model, feature_model)
    fs = predict_eagerly(features, x, batch_size)
    ft = predict_eagerly(features, target_x, batch_size)
    return dev_risk(fs, losses, ft, seed=seed)


class DEVCallback(keras.callbacks.Callback):
    """Writes the DEV risk into the epoch logs (``logs["dev_risk"]``, lower is better).

    Put it before callbacks that read it (``ModelCheckpoint(monitor="dev_risk",
    mode="min")``, ``EarlyStopping``, a KerasTuner objective
    ``keras_tuner.Objective("dev_risk", "min")``).

    Args:
        source_validation: tuple ``(x, y)``. Labelled source validation data.
        target_x: array-like. Unlabelled target data.
        every: int. Compute every ``every`` epochs (and the last). Defaults to 1.
        feature_model: keras Model or None. See `deep_embedded_validation`.
        name: str. Log key. Defaults to "dev_risk".
    """

    def __init__(
        self,
        source_validation: tuple[Any, Any],
        target_x: Any,
        *,
        every: int = 1,
        feature_model: Any = None,
        name: str = "dev_risk",
    ) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"Expected every >= 1. Received: every={every}")
        self.source_validation = source_validation
        self.target_x = target_x
        self.every = int(every)
        self.feature_model = feature_model
        self.name = name
        self.history: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        risk = deep_embedded_validation(
            self.model,
            self.source_validation,
            self.target_x,
            feature_model=self.feature_model,
        )
        self.history.append(risk)
        if logs is not None:
            logs[self.name] = risk
