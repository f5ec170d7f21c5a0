"""Unsupervised scores that rank adapted models without target labels.

Every score is oriented so that HIGHER IS BETTER:

- ``snd``: Soft Neighborhood Density (Saito et al. 2021) of the target predictions;
- ``entropy``: minus the mean entropy of the target predictions;
- ``im``: information maximisation, ``H(mean p) - mean H(p)``;
- ``dev``: minus the Deep Embedded Validation risk (You et al. 2019), which uses
  held-out labelled SOURCE data importance-weighted towards the target;
- ``ensv``: EnsV (Hu et al. 2024), the share of target examples on which a
  candidate's predicted class equals that of the mean prediction of ALL the run's
  candidates (`ensemble_agreement`). Unlike the others it depends on the pool: it is
  computed once every candidate has trained;
- ``rv``: reverse validation (`keras_transfer.adaptation.reverse`): the held-out
  source accuracy of a fresh model trained on the candidate's target pseudo-labels.
  It trains one short model per candidate, so `adapt` computes it only when the
  selector needs it;
- ``ensv_rv``: EnsV among the candidates whose ``rv`` is at least
  `RV_VETO_SHARE` of the best candidate's (a candidate whose labelling of the target
  teaches the source task back at under half the best rate is vetoed).

`adapt(method="auto")` ranks its candidates by one of them (`SELECTORS`); the
benchmark records all of them so the agreement of each with the truth can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.adaptation.selection import dev_risk

SELECTORS = ("snd", "entropy", "im", "dev", "ensv", "rv", "ensv_rv")
#: Selectors computed per model (`selection_scores`); the rest need the whole pool.
MODEL_SELECTORS = ("snd", "entropy", "im", "dev")
#: Selectors that need the reverse-validation score (one short fit per candidate).
REVERSE_SELECTORS = ("rv", "ensv_rv")
#: ``ensv_rv`` keeps the candidates whose ``rv`` is at least this share of the best.
RV_VETO_SHARE = 0.5


def ensemble_agreement(probabilities: Mapping[str, Any]) -> dict[str, float]:
    """EnsV: how often each model's predicted class is the ensemble's.

    The ensemble is the mean of the models' class probabilities on the same target
    examples; a model's score is the share of examples whose argmax equals the
    ensemble's (higher is better). With one model the score is 1.

    Args:
        probabilities: mapping ``name -> array (n, classes)``. Each model's class
            probabilities on the same unlabelled target examples.

    Returns:
        dict mapping each name to its agreement in ``[0, 1]``.

    Raises:
        ValueError: No models, or arrays of different shapes.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation.scores import ensemble_agreement
    a = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    b = np.array([[0.6, 0.4], [0.7, 0.3], [0.4, 0.6]])
    c = np.array([[0.2, 0.8], [0.1, 0.9], [0.6, 0.4]])  # the odd one out
    scores = ensemble_agreement({"a": a, "b": b, "c": c})
    assert scores["a"] == scores["b"] == 1.0 and scores["c"] == 0.0
    ```

    References:
        Hu, Luo, Liang and Foo 2024, "Towards Reliable Model Selection for
        Unsupervised Domain Adaptation: An Empirical Study and A Certified
        Baseline", NeurIPS Datasets and Benchmarks.
    """
    if not probabilities:
        raise ValueError("Expected at least one model's probabilities. Received: {}")
    arrays = {n: np.asarray(p, dtype="float64") for n, p in probabilities.items()}
    shapes = {n: a.shape for n, a in arrays.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(
            "Expected arrays (n, classes) of one shape for every model. "
            f"Received shapes: {shapes}"
        )
    votes = np.mean(list(arrays.values()), axis=0).argmax(-1)
    return {n: float(np.mean(a.argmax(-1) == votes)) for n, a in arrays.items()}


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=axis)


def soft_neighborhood_density(
    probabilities: Any, *, temperature: float = 0.05, max_samples: int = 1000, seed=0
) -> float:
    """SND: mean entropy of each target example's soft neighbourhood distribution.

    Args:
        probabilities: array ``(n, classes)``. Target class probabilities.
        temperature: float. Similarity temperature (0.05 in the paper).
            Defaults to 0.05.
        max_samples: int. Subsample size (the cost is quadratic). Defaults to 1000.
        seed: int. Subsample seed. Defaults to 0.

    Returns:
        float. Higher means denser, better clustered target predictions.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation.scores import soft_neighborhood_density
    clustered = np.repeat(np.eye(3), 10, axis=0) * 0.9 + 0.1 / 3
    uniform = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    assert soft_neighborhood_density(clustered) > soft_neighborhood_density(uniform)
    ```

    References:
        Saito et al. 2021, "Tune it the Right Way: Unsupervised Validation of Domain
        Adaptation via Soft Neighborhood Density", ICCV.
    """
    p = np.asarray(probabilities, dtype="float64")
    if len(p) > max_samples:
        p = p[np.random.default_rng(seed).choice(len(p), max_samples, replace=False)]
    p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    sim = p @ p.T / temperature
    np.fill_diagonal(sim, -np.inf)
    sim = sim - sim.max(axis=1, keepdims=True)
    soft = np.exp(sim)
    soft /= soft.sum(axis=1, keepdims=True)
    return float(np.mean(_entropy(soft)))


def selection_scores(
    model: Any,
    feature_model: Any,
    source_validation: tuple[Any, Any],
    target_x: Any,
    *,
    batch_size: int = 256,
    seed: int = 0,
    target_probabilities: Any = None,
) -> dict[str, float]:
    """The per-model `SELECTORS` (`MODEL_SELECTORS`; higher is better for each).

    Args:
        model: keras Model. Inputs → class probabilities.
        feature_model: keras Model. Inputs → the features the head sees (for DEV).
        source_validation: tuple ``(x, y)``. Held-out labelled source data.
        target_x: array. Unlabelled target inputs.
        batch_size: int. Prediction batch size. Defaults to 256.
        seed: int. Seed of subsampling and DEV's folds. Defaults to 0.
        target_probabilities: array or None. ``model``'s predictions on
            ``target_x`` when already computed; None predicts them.

    Returns:
        dict mapping each selector name to its score.
    """
    xs, ys = source_validation
    ys = np.asarray(ys).reshape(-1).astype(int)
    if target_probabilities is None:
        target_probabilities = predict_eagerly(model, target_x, batch_size)
    pt = np.asarray(target_probabilities)
    ps = np.asarray(predict_eagerly(model, xs, batch_size))
    losses = -np.log(np.clip(ps[np.arange(len(ys)), ys], 1e-7, 1.0))
    fs = predict_eagerly(feature_model, xs, batch_size)
    ft = predict_eagerly(feature_model, target_x, batch_size)
    try:
        dev = -dev_risk(fs, losses, ft, seed=seed, folds=min(5, len(ys) // 2 or 1))
    except ValueError:
        dev = float("nan")
    return {
        "snd": soft_neighborhood_density(pt, seed=seed),
        "entropy": -float(np.mean(_entropy(pt))),
        "im": float(_entropy(pt.mean(axis=0)) - np.mean(_entropy(pt))),
        "dev": float(dev),
    }
