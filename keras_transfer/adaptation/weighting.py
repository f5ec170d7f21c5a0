"""Importance weights p_target(x) / p_source(x) for source examples."""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_2d(x: Any, feature_fn: Any, batch_size: int) -> np.ndarray:
    if feature_fn is not None:
        x = (
            feature_fn.predict(x, batch_size=batch_size, verbose=0)
            if hasattr(feature_fn, "predict")
            else feature_fn(x)
        )
    x = np.asarray(x, dtype="float64")
    return x.reshape(len(x), -1)


def _classifier_ratio(
    fs: np.ndarray, ft: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([fs, ft])
    d = np.concatenate([np.zeros(len(fs)), np.ones(len(ft))])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    p_target = cross_val_predict(clf, x, d, cv=cv, method="predict_proba")[: len(fs), 1]
    p_target = np.clip(p_target, 1e-6, 1 - 1e-6)
    return (len(fs) / len(ft)) * p_target / (1.0 - p_target)


def _kmm_ratio(fs: np.ndarray, ft: np.ndarray, bound: float) -> np.ndarray:
    from scipy.optimize import minimize

    mean, std = fs.mean(0), fs.std(0) + 1e-8
    fs, ft = (fs - mean) / std, (ft - mean) / std

    def sq(a, b):
        return np.maximum((a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None], 0)

    gamma = 1.0 / max(np.median(sq(fs, fs)), 1e-8)
    ns, nt = len(fs), len(ft)
    k = np.exp(-gamma * sq(fs, fs))
    kappa = (ns / nt) * np.exp(-gamma * sq(fs, ft)).sum(1)
    eps = (np.sqrt(ns) - 1) / np.sqrt(ns)
    penalty = 10.0 * ns

    def objective(beta):
        excess = max(abs(beta.sum() - ns) - ns * eps, 0.0)
        grad_pen = 2 * penalty * excess * np.sign(beta.sum() - ns) / ns**2
        value = 0.5 * beta @ k @ beta - kappa @ beta + penalty * (excess / ns) ** 2
        return value, k @ beta - kappa + grad_pen

    result = minimize(
        objective, np.ones(ns), jac=True, method="L-BFGS-B", bounds=[(0, bound)] * ns
    )
    return result.x


def importance_weights(
    source: Any,
    target: Any,
    *,
    feature_fn: Any = None,
    method: str = "classifier",
    max_weight: float | None = 10.0,
    normalize: bool = True,
    folds: int = 5,
    batch_size: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Estimates ``w(x) = p_target(x) / p_source(x)`` for each source example.

    ``method="classifier"`` fits a logistic-regression domain classifier on
    standardized features with ``folds``-fold cross-fitting (each source weight comes
    from a classifier that did not see that example) and returns
    ``(n_s / n_t) * P(target | x) / P(source | x)``. ``method="kmm"`` solves kernel
    mean matching (Huang et al. 2007; Gaussian kernel, median heuristic, weights in
    ``[0, max_weight]``). Train with ``sample_weight=weights`` (Keras ``fit``, or the
    third element of `domain_pairs`' source).

    Args:
        source: array-like. Source examples or features, shape ``(n_s, ...)``.
        target: array-like. Target examples or features, shape ``(n_t, ...)``.
        feature_fn: keras Model, callable or None. Maps examples to features first
            (e.g. ``dann.encoder``). Defaults to None (use the inputs flattened).
        method: str. ``"classifier"`` or ``"kmm"``. Defaults to "classifier".
        max_weight: float or None. Upper clip. Defaults to 10.0.
        normalize: bool. Rescale to mean 1. Defaults to True.
        folds: int. Cross-fitting folds (classifier). Defaults to 5.
        batch_size: int. Batch size of ``feature_fn.predict``. Defaults to 256.
        seed: int. Fold shuffling seed. Defaults to 0.

    Returns:
        ``np.ndarray`` of shape ``(n_s,)``, float32, >= 0.

    Raises:
        ValueError: For an unknown method, too few examples, or mismatched features.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import importance_weights
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, 2))
    xt = rng.normal(size=(200, 2)) + [1.0, 0.0]
    w = importance_weights(xs, xt)
    assert w[xs[:, 0] > 1].mean() > w[xs[:, 0] < -1].mean()
    ```

    References:
        Shimodaira 2000; Huang et al. 2007, "Correcting Sample Selection Bias by
        Unlabeled Data" (KMM).
    """
    if method not in ("classifier", "kmm"):
        raise ValueError(
            f"Expected method to be 'classifier' or 'kmm'. Received: method={method!r}"
        )
    if max_weight is not None and max_weight <= 0:
        raise ValueError(f"Expected max_weight > 0 or None. Received: {max_weight}")
    fs = _as_2d(source, feature_fn, batch_size)
    ft = _as_2d(target, feature_fn, batch_size)
    if fs.shape[1] != ft.shape[1]:
        raise ValueError(
            "Expected source and target features of the same size. Received: "
            f"{fs.shape[1]} and {ft.shape[1]}"
        )
    if min(len(fs), len(ft)) < folds:
        raise ValueError(
            f"Expected at least folds={folds} examples per domain. Received: "
            f"{len(fs)} source and {len(ft)} target"
        )
    if method == "classifier":
        weights = _classifier_ratio(fs, ft, folds, seed)
    else:
        weights = _kmm_ratio(fs, ft, max_weight or 1000.0)
    if max_weight is not None:
        weights = np.minimum(weights, max_weight)
    if normalize and weights.sum() > 0:
        weights = weights * len(weights) / weights.sum()
    return weights.astype("float32")
