"""`adapt(..., selector="soup")`: the candidates' weights averaged into one model.

Every candidate of ``method="auto"`` branches from one warm-up, and networks trained
on from a shared, partly trained state tend to stay in one linearly connected basin
(Frankle et al. 2020), so the mean of their weights is a model too: a "model soup"
(Wortsman et al. 2022). It costs one forward pass at inference, like a single
candidate, where the ensemble of the same members costs one per member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.model import compile_for_evaluation
from keras_transfer.data.files import lazy_asarray
from keras_transfer.normalization import (
    batchnorm_layers,
    recompute_batchnorm_statistics,
)

#: The ``selector`` of `adapt` that returns the mean of the eligible candidates'
#: weights (docs/domain_adaptation.md, "A soup of the candidates").
SOUP = "soup"
#: What ``adapt(method="auto")`` may do when its low-agreement warning fires:
#: return the soup of the eligible candidates, or keep the selector's choice.
LOW_AGREEMENT_ACTIONS = (SOUP, "keep")
#: The default of ``adapt(on_low_agreement=...)`` (docs/domain_adaptation.md,
#: "A soup of the candidates (stop 36)").
DEFAULT_ON_LOW_AGREEMENT = SOUP


def soup_model(
    members: Mapping[str, Any],
    statistics_inputs: Any,
    *,
    batch_size: int = 128,
    max_batches: int | None = 200,
    name: str = "soup",
) -> Any:
    """One model whose weights are the mean of ``members``' weights.

    The members must share one architecture (candidates of one `adapt` run do:
    they differ only in their weights). The mean of two BatchNormalization layers'
    moving statistics is not the statistics of the averaged network, so every
    trainable BatchNormalization layer is re-estimated in one pass over
    ``statistics_inputs`` (no label; frozen ones, identical in every member, keep
    their statistics).

    Args:
        members: dict. Name -> keras Model, all of one architecture.
        statistics_inputs: array. Inputs the averaged network's trainable
            BatchNorm statistics are re-estimated on (`adapt` passes the target
            inputs when it re-estimated each candidate on them, else the source
            training inputs and the target inputs together).
        batch_size: int. Batch size of that pass. Defaults to 128.
        max_batches: int or None. Cap on the batches of that pass. Defaults to 200.
        name: str. The model's name. Defaults to "soup".

    Returns:
        keras Model, a clone of the first member holding the mean weights, compiled
        with accuracy (as `adapt`'s inference models are).

    Raises:
        ValueError: no members, or members whose weights do not line up.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.soup import soup_model
    def member(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
        )
    a, b = member(0), member(1)
    soup = soup_model({"a": a, "b": b}, np.ones((8, 4), "float32"))
    kernel = (a.layers[0].kernel.numpy() + b.layers[0].kernel.numpy()) / 2
    np.testing.assert_allclose(soup.layers[0].kernel.numpy(), kernel, rtol=1e-6)
    ```

    References:
        Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned
        models improves accuracy without increasing inference time", ICML.
    """
    if not members:
        raise ValueError("Expected at least one member model. Received: none")
    weights = {key: m.get_weights() for key, m in members.items()}
    shapes = {key: [w.shape for w in ws] for key, ws in weights.items()}
    first_key = next(iter(members))
    for key, s in shapes.items():
        if s != shapes[first_key]:
            raise ValueError(
                "Expected members of one architecture (the same weight shapes). "
                f"Received: {first_key} has {len(shapes[first_key])} weights, "
                f"{key} has {len(s)}, or their shapes differ"
            )
    first = members[first_key]
    soup = keras.models.clone_model(first)
    soup.set_weights(
        [
            np.mean([ws[i] for ws in weights.values()], axis=0).astype(
                weights[first_key][i].dtype
            )
            for i in range(len(weights[first_key]))
        ]
    )
    if any(layer.trainable for layer in batchnorm_layers(soup)):
        recompute_batchnorm_statistics(
            soup,
            lazy_asarray(statistics_inputs),
            include_frozen=False,
            batch_size=batch_size,
            max_batches=max_batches,
        )
    soup.name = name
    return compile_for_evaluation(soup)
