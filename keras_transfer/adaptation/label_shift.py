"""Label shift: the target's class proportions estimated without target labels.

When the target's classes are not as frequent as the source's (label shift), a
classifier trained on the source keeps the source's class prior in its predictions.
Two standard estimators recover the target's prior from the classifier's
predictions on unlabelled target inputs:

- ``"bbse"``: black-box shift estimation (Lipton et al. 2018), soft version. With
  ``C[i, j]`` the source's joint probability of predicting ``i`` for an example of
  class ``j`` (read on labelled held-out source data) and ``mu[i]`` the mean
  predicted probability of class ``i`` on the target, the class weights
  ``w = p_target(y) / p_source(y)`` solve ``C w = mu`` (non-negative least
  squares here).
- ``"em"``: the EM re-estimation of Saerens et al. (2002): alternately reweight
  every target prediction by the current prior ratio and average them.

Both assume that only the class proportions changed (``p(x | y)`` shared by the
domains); under a domain shift that assumption is false, and how much the
estimate is worth is a measurement (docs/domain_adaptation.md, "Label shift").
`PriorCorrection` multiplies a model's class probabilities by the weights and
renormalises them: the Bayes-optimal correction of a calibrated classifier under
pure label shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras

ops = keras.ops

#: The estimators `estimate_label_shift` knows.
LABEL_SHIFT_ESTIMATORS = ("bbse", "em")


def _probabilities(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            f"Expected {name} to be class probabilities of shape (n, num_classes) "
            f"with num_classes >= 2. Received: shape {array.shape}"
        )
    if len(array) == 0:
        raise ValueError(f"Expected at least one row in {name}. Received none.")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            f"Expected {name} to hold finite non-negative probabilities "
            "(a softmax output, not logits)."
        )
    return array / np.maximum(array.sum(1, keepdims=True), 1e-12)


def _bbse(ps: np.ndarray, ys: np.ndarray, pt: np.ndarray, k: int) -> np.ndarray:
    from scipy.optimize import nnls

    onehot = np.eye(k)[ys]
    confusion = ps.T @ onehot / len(ys)  # C[i, j] = P_source(predict i, class j)
    mu = pt.mean(0)
    weights, _ = nnls(confusion, mu)
    return weights


def _em(
    ps_prior: np.ndarray, pt: np.ndarray, iterations: int, tol: float
) -> np.ndarray:
    prior = ps_prior.copy()
    for _ in range(iterations):
        ratio = prior / ps_prior
        posterior = pt * ratio
        posterior /= np.maximum(posterior.sum(1, keepdims=True), 1e-12)
        new = posterior.mean(0)
        if np.abs(new - prior).sum() < tol:
            prior = new
            break
        prior = new
    return prior / ps_prior


def estimate_label_shift(
    source_probabilities: Any,
    source_labels: Any,
    target_probabilities: Any,
    *,
    estimator: str = "bbse",
    max_weight: float = 20.0,
    em_iterations: int = 100,
    shrink: bool = False,
) -> dict:
    """Estimates the target's class prior from a classifier's predictions.

    Args:
        source_probabilities: array ``(n_source, num_classes)``. The classifier's
            class probabilities on labelled source data it did not train on (a
            held-out split).
        source_labels: int array ``(n_source,)``. Their labels.
        target_probabilities: array ``(n_target, num_classes)``. Its class
            probabilities on unlabelled target inputs.
        estimator: ``"bbse"`` (soft black-box shift estimation) or ``"em"``
            (Saerens et al.). Defaults to "bbse".
        max_weight: float > 1. Weights are clipped to ``[1 / max_weight,
            max_weight]`` before the prior is renormalised, so that a class the
            estimate thinks absent still keeps a little mass. Defaults to 20.
        em_iterations: int. Most EM iterations. Defaults to 100.
        shrink: bool. Whether to shrink the estimated prior toward the source's
            by how little the two estimators agree: with ``d`` the total
            variation between the BBSE and the EM prior and ``s`` that between
            the chosen estimate and the source prior, the estimated shift is
            kept in the share ``reliability = max(0, 1 - d / s)``. Under label
            shift alone both estimators are consistent and agree; under a domain
            shift the classifier misreads the target and they part ways, so a
            shift no larger than their disagreement is not trusted. Defaults to
            False (the estimate as it is).

    Returns:
        A dict: ``"weights"`` (``p_target(y) / p_source(y)`` per class, as a list),
        ``"target_prior"``, ``"source_prior"`` (the class frequencies of
        ``source_labels``), ``"estimator"``, ``"imbalance"`` (the largest over
        the smallest estimated target class frequency) and ``"reliability"``
        (the share of the shift kept when ``shrink=True``, else None).

    Raises:
        ValueError: probabilities that are not ``(n, num_classes)`` arrays of
            non-negative numbers, labels outside ``[0, num_classes)``, a class
            missing from the source labels, or an unknown estimator.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import estimate_label_shift
    rng = np.random.default_rng(0)
    ys = rng.integers(0, 2, 400)
    ps = np.where(ys[:, None] == [0, 1], 0.9, 0.1)  # a 90%-accurate classifier
    yt = (rng.random(1000) < 0.8).astype(int)  # the target: 80% class 1
    pt = np.where(yt[:, None] == [0, 1], 0.9, 0.1)
    got = estimate_label_shift(ps, ys, pt)
    assert abs(got["target_prior"][1] - 0.8) < 0.05
    ```

    References:
        Lipton, Wang and Smola 2018, "Detecting and Correcting for Label Shift
        with Black Box Predictors", ICML. Saerens, Latinne and Decaestecker 2002,
        "Adjusting the Outputs of a Classifier to New a Priori Probabilities",
        Neural Computation.
    """
    if estimator not in LABEL_SHIFT_ESTIMATORS:
        raise ValueError(
            f"Expected estimator in {LABEL_SHIFT_ESTIMATORS}. "
            f"Received: estimator={estimator!r}"
        )
    if not max_weight > 1.0:
        raise ValueError(f"Expected max_weight > 1. Received: {max_weight}")
    ps = _probabilities(source_probabilities, "source_probabilities")
    pt = _probabilities(target_probabilities, "target_probabilities")
    k = ps.shape[1]
    if pt.shape[1] != k:
        raise ValueError(
            "Expected source and target probabilities over the same classes. "
            f"Received: {k} and {pt.shape[1]} columns"
        )
    ys = np.asarray(source_labels).reshape(-1)
    if len(ys) != len(ps):
        raise ValueError(
            f"Expected one label per source row. Received: {len(ys)} labels for "
            f"{len(ps)} rows"
        )
    if not np.issubdtype(ys.dtype, np.integer):
        if not np.all(np.mod(ys, 1) == 0):
            raise ValueError("Expected integer class labels in source_labels.")
        ys = ys.astype("int64")
    if ys.min() < 0 or ys.max() >= k:
        raise ValueError(
            f"Expected source labels in [0, {k}). Received: {ys.min()}..{ys.max()}"
        )
    counts = np.bincount(ys, minlength=k)
    if np.any(counts == 0):
        raise ValueError(
            "Expected every class among the source labels (the estimate needs "
            f"each class's predictions). Missing: {np.flatnonzero(counts == 0).tolist()}"
        )
    source_prior = counts / counts.sum()

    def prior(name: str) -> np.ndarray:
        if name == "bbse":
            weights = _bbse(ps, ys, pt, k)
        else:
            weights = _em(source_prior, pt, int(em_iterations), 1e-8)
        weights = np.clip(weights, 1.0 / max_weight, max_weight)
        return weights * source_prior / np.sum(weights * source_prior)

    target_prior = prior(estimator)
    reliability = None
    if shrink:
        other = prior("em" if estimator == "bbse" else "bbse")
        disagreement = 0.5 * np.abs(target_prior - other).sum()
        shift = 0.5 * np.abs(target_prior - source_prior).sum()
        reliability = float(max(0.0, 1.0 - disagreement / shift)) if shift else 0.0
        target_prior = source_prior + reliability * (target_prior - source_prior)
    weights = target_prior / source_prior
    return {
        "estimator": estimator,
        "weights": weights.tolist(),
        "target_prior": target_prior.tolist(),
        "source_prior": source_prior.tolist(),
        "imbalance": float(target_prior.max() / target_prior.min()),
        "reliability": reliability,
    }


@keras.saving.register_keras_serializable(package="keras_transfer")
class PriorCorrection(keras.layers.Layer):
    """Reweights class probabilities by ``p_target(y) / p_source(y)``.

    ``outputs = p * w / sum(p * w)`` along the last axis: a classifier trained on
    the source's class prior predicts as if trained on the target's (Saerens et
    al. 2002). The weights are a constant of the layer (saved in its config), so
    the corrected model saves, loads and exports like any other.

    Args:
        class_weights: sequence of float > 0, one per class.
        **kwargs: Layer keyword arguments.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import PriorCorrection
    layer = PriorCorrection([1.0, 3.0])
    out = np.asarray(layer(np.array([[0.5, 0.5]], "float32")))
    np.testing.assert_allclose(out, [[0.25, 0.75]], atol=1e-6)
    ```
    """

    def __init__(self, class_weights: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        values = [float(w) for w in np.asarray(class_weights, "float64").reshape(-1)]
        if len(values) < 2 or not all(np.isfinite(v) and v > 0 for v in values):
            raise ValueError(
                "Expected weights to be at least two finite positive numbers, one "
                f"per class. Received: {class_weights!r}"
            )
        self.weights_values = values

    def build(self, input_shape):
        if input_shape[-1] is not None and int(input_shape[-1]) != len(
            self.weights_values
        ):
            raise ValueError(
                f"PriorCorrection has {len(self.weights_values)} weights; its input "
                f"has {input_shape[-1]} classes."
            )
        self.built = True

    def call(self, inputs):
        w = ops.convert_to_tensor(np.asarray(self.weights_values, "float32"))
        scaled = ops.cast(inputs, "float32") * w
        return scaled / ops.maximum(ops.sum(scaled, axis=-1, keepdims=True), 1e-12)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["class_weights"] = list(self.weights_values)
        return config


def prior_corrected(model: Any, weights: Any, name: str | None = None) -> Any:
    """``model`` followed by `PriorCorrection` (a new functional model, weights
    shared).

    Args:
        model: a Keras model whose output is class probabilities.
        weights: sequence of float, ``p_target(y) / p_source(y)`` per class (the
            ``"weights"`` of `estimate_label_shift`).
        name: str or None. The new model's name; None keeps ``model.name``.

    Returns:
        A `keras.Model` with the same inputs.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import prior_corrected
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax")])
    corrected = prior_corrected(model, [1.0, 1.0])
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(corrected.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    ```
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "Expected a model with known inputs (a functional or built Sequential "
            f"model). Received: {type(model).__name__} {model.name!r}"
        )
    inputs = inputs if len(inputs) > 1 else inputs[0]
    outputs = PriorCorrection(weights, name="prior_correction")(model.outputs[0])
    return keras.Model(inputs, outputs, name=name or model.name)


__all__ = [
    "LABEL_SHIFT_ESTIMATORS",
    "PriorCorrection",
    "estimate_label_shift",
    "prior_corrected",
]
