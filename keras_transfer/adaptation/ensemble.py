"""`adapt(..., selector="ensemble")`: the candidates' ensemble as one Keras model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.adaptation.model import compile_for_evaluation

#: The ``selector`` of `adapt` that returns the mean of the candidates' class
#: probabilities instead of one candidate (docs/domain_adaptation.md, "Returning
#: the candidates' ensemble").
ENSEMBLE = "ensemble"


def ensemble_model(members: Mapping[str, Any], name: str = "ensemble") -> Any:
    """One model whose output is the mean of ``members``' class probabilities.

    Each member keeps its own weights, nested under the name ``member_<key>``, so
    the result saves to one ``.keras`` file and exports like any inference model; it
    costs one forward pass per member.

    Args:
        members: dict. Name -> keras Model mapping the same inputs to class
            probabilities of the same shape.
        name: str. The model's name. Defaults to "ensemble".

    Returns:
        keras Model, compiled with accuracy (as `adapt`'s inference models are).

    Raises:
        ValueError: no members, or members whose input or output shapes differ.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation.ensemble import ensemble_model
    def member(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
        )
    a, b = member(0), member(1)
    model = ensemble_model({"a": a, "b": b})
    x = np.ones((2, 4), "float32")
    mean = (a.predict(x, verbose=0) + b.predict(x, verbose=0)) / 2
    np.testing.assert_allclose(model.predict(x, verbose=0), mean, rtol=1e-5)
    ```
    """
    if not members:
        raise ValueError("Expected at least one member model. Received: none")
    shapes = {
        key: (tuple(m.inputs[0].shape[1:]), tuple(m.outputs[0].shape[1:]))
        for key, m in members.items()
    }
    if len(set(shapes.values())) > 1:
        raise ValueError(
            "Expected members with the same input and output shapes. Received: "
            + ", ".join(f"{k}: in {i}, out {o}" for k, (i, o) in shapes.items())
        )
    first = next(iter(members.values()))
    inputs = keras.Input(
        shape=first.inputs[0].shape[1:], dtype=first.inputs[0].dtype, name="inputs"
    )
    outputs = [
        keras.Model(m.inputs, m.outputs[0], name=f"member_{key}")(inputs)
        for key, m in members.items()
    ]
    mean = (
        keras.layers.Average(name="mean_probabilities")(outputs)
        if len(outputs) > 1
        else outputs[0]
    )
    return compile_for_evaluation(keras.Model(inputs, mean, name=name))
