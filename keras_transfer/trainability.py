"""Which layers of a model are frozen, as data: recorded, and put back on a rebuilt model.

A model's `trainable` flags are part of what a user trains further, but a `.keras`
file does not always keep them: KerasHub rebuilds a backbone from its constructor
arguments, so its layers come back with default flags. `trainable_record` writes
down every layer's flag (and the keras-transfer marks on it, attributes named
`_kt_*` such as `normalization.UNTRAINED_FLAG`), keyed by its position in the layer
tree; `apply_trainable_record` sets them on a model built from the same config.
`saving.save_model` stores the record in the archive and `saving.load_model` applies
it before Keras builds the optimizer.

Examples:
```python
import keras
from keras_transfer.trainability import apply_trainable_record, trainable_record
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
model.layers[0].trainable = False
record = trainable_record(model)
model.layers[0].trainable = True
assert apply_trainable_record(model, record) == 1
```
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "MARK_PREFIX",
    "apply_trainable_record",
    "set_layer_trainable",
    "trainable_record",
]

logger = logging.getLogger("keras_transfer")

#: Attributes of a layer named with this prefix and set to True are keras-transfer
#: marks (`normalization.UNTRAINED_FLAG`); the record keeps them.
MARK_PREFIX = "_kt_"
_RECORD_VERSION = 1


def _walk(layer: Any, prefix: str = "", seen: set | None = None):
    """(key, layer) for every layer below `layer` that holds weights, parents first.

    A key is the chain of `index:class` from the top (`"2:VGGBackbone/1:Conv2D"`),
    counting only children that hold weights: the same for a model rebuilt from the
    same config, which is all it must match (not names: Keras numbers automatic names
    apart, `vgg_backbone_1`, per process). Layers without weights (inputs, dropout,
    a tokenizer's packer built on first call) are left out, and a layer reached
    twice (a builder's `model.backbone` attribute, also a node of the graph) counts
    once, where it is first reached.
    """
    seen = {id(layer)} if seen is None else seen
    children = [
        child
        for child in layer._flatten_layers(include_self=False, recursive=False)
        if child.weights
    ]
    for index, child in enumerate(children):
        if id(child) in seen:  # reached already (depth first), e.g. model.backbone
            continue
        seen.add(id(child))
        key = f"{prefix}{index}:{type(child).__name__}"
        yield key, child
        yield from _walk(child, key + "/", seen)


def _marks(layer: Any) -> list[str]:
    """The keras-transfer marks set on `layer` (true attributes named `_kt_*`)."""
    return sorted(
        name
        for name, value in vars(layer).items()
        if name.startswith(MARK_PREFIX) and value is True
    )


def set_layer_trainable(layer: Any, value: bool) -> None:
    """Sets `layer.trainable`, always running the property setter.

    With the TensorFlow backend, `layer.trainable = False` on a layer whose flag is
    already False is skipped by TF's attribute tracking (`AutoTrackable` short-circuits
    `self.x = self.x`), so variables created trainable afterwards would stay
    trainable. Calling the setter directly avoids that.
    """
    type(layer).trainable.fset(layer, bool(value))


def trainable_record(model: Any) -> dict:
    """Every layer's `trainable` flag (and keras-transfer marks) of `model`.

    Args:
        model: keras.Model.

    Returns:
        dict, JSON-serializable: what `apply_trainable_record` puts back.

    Examples:
    ```python
    import keras
    from keras_transfer.trainability import apply_trainable_record, trainable_record
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2),
                              keras.layers.Dense(1)])
    model.layers[0].trainable = False
    record = trainable_record(model)
    model.layers[0].trainable = True
    assert apply_trainable_record(model, record) == 1
    assert not model.layers[0].trainable
    ```
    """
    layers = [
        [key, bool(layer.trainable), _marks(layer)] for key, layer in _walk(model)
    ]
    return {
        "version": _RECORD_VERSION,
        "model": model.name,
        "trainable": bool(model.trainable),
        "layers": layers,
    }


def apply_trainable_record(model: Any, record: dict) -> int:
    """Sets `model`'s layers' `trainable` flags to those `record` holds.

    Flags are set parents first (setting a parent's flag sets its children's), so
    the result is the recorded state whatever the model's was. A layer the record
    does not name, or a record that names layers the model lacks, is left as it is,
    with a warning in the log.

    Args:
        model: keras.Model, built from the same config as the recorded one.
        record: dict from `trainable_record`.

    Returns:
        int. Layers whose flag changed.
    """
    if record.get("version") != _RECORD_VERSION:
        logger.warning(
            "load_model: unknown trainable record version %r (this keras-transfer "
            "reads version %d); layers' trainable flags left as Keras loaded them.",
            record.get("version"),
            _RECORD_VERSION,
        )
        return 0
    changed = 0
    if bool(model.trainable) != record["trainable"]:
        set_layer_trainable(model, record["trainable"])
        changed += 1
    layers = dict(_walk(model))
    missing = []
    for key, trainable, marks in record["layers"]:
        layer = layers.pop(key, None)
        if layer is None:
            missing.append(key)
            continue
        if bool(layer.trainable) != trainable:
            set_layer_trainable(layer, trainable)
            changed += 1
        for mark in marks:
            setattr(layer, mark, True)
    if missing or layers:
        logger.warning(
            "load_model: the saved trainable flags did not match the model's layers "
            "(%d recorded layers not found, %d layers not recorded%s); those layers "
            "keep the flags Keras loaded.",
            len(missing),
            len(layers),
            ": " + ", ".join((missing + list(layers))[:3]),
        )
    return changed
