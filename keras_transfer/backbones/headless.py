"""A trained classifier's features: the model without its classification head.

`feature_extractor` turns a classifier (one `build_classifier`, `fine_tune`, `adapt`
or the CLI wrote, or any functional/Sequential Keras model ending in a `Dense`
classification layer) into the sub-model ending at the features that layer
classifies, so a trained model can be a backbone again (`build_classifier`, the CLI's
`model.backbone=<file>.keras`) or the encoder of `fewshot`.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras

__all__ = ["feature_extractor", "looks_like_classifier"]

CLASSIFIER_ACTIVATIONS = ("softmax", "sigmoid")


def _activation_name(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "")


def looks_like_classifier(model: Any) -> bool:
    """Whether `model`'s last layer applies softmax or sigmoid (a classifier's top).

    Args:
        model: keras.Model or keras.layers.Layer.

    Returns:
        True when the last layer's `activation` is softmax or sigmoid.

    Examples:
    ```python
    import keras
    from keras_transfer.backbones import looks_like_classifier
    top = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    assert looks_like_classifier(top)
    ```
    """
    layers = getattr(model, "layers", None)
    if not isinstance(model, keras.Model) or not layers:
        return False
    return _activation_name(layers[-1]) in CLASSIFIER_ACTIVATIONS


def _producer(tensor: Any) -> tuple[Any, Any]:
    """The layer that computed the symbolic `tensor` and its call (node).

    Read from the tensor's own history, so a layer called in several models (a
    shared backbone, an adapted model's bottleneck) is followed through the call
    that belongs to this graph. `(None, None)` for a model input.
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise ValueError(f"Cannot follow the graph back from {tensor!r}.")
    layer, node_index = history[0], history[1]
    if isinstance(layer, keras.layers.InputLayer):
        return None, None
    return layer, layer._inbound_nodes[node_index]


def _input_of(layer: Any, node: Any) -> Any:
    tensors = list(node.input_tensors)
    if len(tensors) != 1:
        raise ValueError(
            f"Expected layer {layer.name!r} to take one input tensor. Received "
            f"{len(tensors)}."
        )
    return tensors[0]


def feature_extractor(model: Any, *, name: str | None = None) -> keras.Model:
    """The sub-model of a classifier that ends at the features its head classifies.

    From the model's output it removes, in this order: a final softmax/sigmoid
    `Activation` (as the models `adapt` returns end), the `Dense` classification
    layer, and the `Dropout` (or training-only, e.g. augmentation) layers directly
    before it. What is left ends at the classifier's input: the pooled backbone
    features of a `build_classifier` model with the linear head, the hidden layer of
    the `"mlp"` head, the bottleneck of an adapted model. Weights are shared with
    `model` (no copy). A model with a `feature_model()` method (a
    `DomainAdaptationModel`) returns what that method returns.

    Args:
        model: keras.Model. A functional or Sequential model (e.g. loaded from a
            `.keras` file) with one output, computed by a `Dense` layer, optionally
            followed by a softmax/sigmoid `Activation`.
        name: str or None. Name of the returned model. Defaults to
            `"<model name>_features"`.

    Returns:
        A functional `keras.Model` from `model`'s inputs to the features.

    Raises:
        ValueError: `model` is not a built functional/Sequential model with one
            output, or its last computation is not a `Dense` layer (with or without
            a final softmax/sigmoid `Activation`).

    Examples:
    ```python
    import keras
    from keras_transfer import build_classifier, feature_extractor
    backbone = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    classifier = build_classifier(backbone, num_classes=3)
    features = feature_extractor(classifier)
    assert features.output.shape == (None, 4)  # the pooled backbone features
    ```
    """
    own = getattr(model, "feature_model", None)
    if callable(own):  # DomainAdaptationModel knows its own features
        return own()
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model (a classifier). Received: {type(model).__name__}"
        )
    try:
        inputs, output = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = output = None
    if not inputs or not output:
        raise ValueError(
            f"Expected a functional or Sequential model with a known graph; model "
            f"{model.name!r} ({type(model).__name__}) has none. Build it with "
            "keras.Input, or pass the sub-model ending at its features."
        )
    if len(output) != 1:
        raise ValueError(
            f"Expected model {model.name!r} to have one output. Received {len(output)}."
        )
    layer, node = _producer(output[0])
    if (
        isinstance(layer, keras.layers.Activation)
        and _activation_name(layer) in CLASSIFIER_ACTIVATIONS
    ):
        layer, node = _producer(_input_of(layer, node))
    if not isinstance(layer, keras.layers.Dense):
        found = "its input" if layer is None else f"layer {layer.name!r}"
        found += "" if layer is None else f" ({type(layer).__name__})"
        raise ValueError(
            f"Expected model {model.name!r} to end in a Dense classification layer "
            "(optionally followed by a softmax/sigmoid Activation). Its output comes "
            f"from {found}."
        )
    features = _input_of(layer, node)
    before, before_node = _producer(features)
    from keras_transfer.layers.training_only import is_training_only

    while before is not None and (
        isinstance(before, keras.layers.Dropout) or is_training_only(before)
    ):
        features = _input_of(before, before_node)
        before, before_node = _producer(features)
    if before is None:
        raise ValueError(
            f"Model {model.name!r} applies its classification layer {layer.name!r} "
            "directly to its input: there are no features before it to keep."
        )
    return keras.Model(inputs, features, name=name or f"{model.name}_features")
