"""Per-domain evaluation: accuracy and per-class precision/recall/F1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _check(domains: Mapping[str, Any]) -> None:
    if not isinstance(domains, Mapping) or not domains:
        raise ValueError(
            "Expected domains to be a non-empty dict like {'source': (x, y), "
            f"'target': (x, y)}}. Received: {type(domains).__name__}"
        )
    for name, pair in domains.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(
                f"Expected domains[{name!r}] to be (x, y). Received: {pair!r}"
            )


def _predict_labels(model: Any, x: Any, batch_size: int) -> np.ndarray:
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if probs.ndim == 2 and probs.shape[1] > 1:
        return probs.argmax(-1)
    return (probs.reshape(-1) > 0.5).astype(int)


def per_domain_accuracy(
    model: Any, domains: Mapping[str, tuple[Any, Any]], *, batch_size: int = 256
) -> dict[str, float]:
    """Accuracy of ``model`` on each labelled domain.

    Args:
        model: keras Model returning class probabilities.
        domains: dict. Domain name -> ``(x, y)``.
        batch_size: int. Prediction batch size. Defaults to 256.

    Returns:
        dict. Domain name -> accuracy.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import per_domain_accuracy
    model = keras.Sequential([keras.Input((2,)), keras.layers.Softmax()])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    acc = per_domain_accuracy(model, {"source": (x, [0, 1]), "target": (x, [1, 1])})
    assert acc == {"source": 1.0, "target": 0.5}
    ```
    """
    _check(domains)
    out = {}
    for name, (x, y) in domains.items():
        predicted = _predict_labels(model, x, batch_size)
        out[name] = float(np.mean(predicted == np.asarray(y).reshape(-1)))
    return out


def domain_classification_reports(
    model: Any,
    domains: Mapping[str, tuple[Any, Any]],
    *,
    class_names: Sequence[str] | None = None,
    output_dict: bool = False,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Per-class precision/recall/F1 of each domain (scikit-learn's report).

    Args:
        model: keras Model returning class probabilities.
        domains: dict. Domain name -> ``(x, y)``.
        class_names: sequence of str or None. Names of classes ``0..k-1``.
        output_dict: bool. Return report dicts instead of text. Defaults to False.
        batch_size: int. Prediction batch size. Defaults to 256.

    Returns:
        dict. Domain name -> report (text, or dict when ``output_dict``).
    """
    from sklearn.metrics import classification_report

    _check(domains)
    reports = {}
    for name, (x, y) in domains.items():
        predicted = _predict_labels(model, x, batch_size)
        y = np.asarray(y).reshape(-1)
        labels = None if class_names is None else list(range(len(class_names)))
        reports[name] = classification_report(
            y,
            predicted,
            labels=labels,
            target_names=None if class_names is None else list(class_names),
            output_dict=output_dict,
            zero_division=0,
        )
    return reports
