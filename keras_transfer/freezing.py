"""Trainable policy: frozen, fully trainable, or the top N layers / transformer blocks.

BatchNormalization layers stay frozen -- and so, in Keras 3, in inference mode --
unless `train_batchnorm=True` (the keras.io fine-tuning rule). A compiled model whose
trainability changes is recompiled with a fresh optimizer, so `fit` never runs a stale
train function over the old trainable weights.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import find_backbone
from keras_transfer.compiling import recompile as _recompile

UnfreezeDepth = int | str

# Transformer blocks count as one unit for unfreeze_depth=N.
_BLOCK_PATTERN = re.compile(
    r"(Transformer(Encoder|Decoder|Layer|Block)|EncoderBlock|DecoderBlock|"
    r"CachedGemmaDecoderBlock|.*DecoderLayer|.*EncoderLayer)$"
)

# backbone -> models built around it, so changing a backbone recompiles its parents.
_PARENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register_parent(backbone: Any, model: Any) -> None:
    """Records that `model` contains `backbone` (builders call this)."""
    _PARENTS.setdefault(backbone, weakref.WeakSet()).add(model)


def set_layer_trainable(layer: Any, value: bool) -> None:
    """Sets `layer.trainable`, always running the property setter.

    With the TensorFlow backend, `layer.trainable = False` on a layer whose flag is
    already False is skipped by TF's attribute tracking (`AutoTrackable` short-circuits
    `self.x = self.x`), so variables created trainable afterwards would stay
    trainable. Calling the setter directly avoids that.
    """
    type(layer).trainable.fset(layer, bool(value))


def check_unfreeze_depth(unfreeze_depth: Any) -> UnfreezeDepth:
    """Validates `unfreeze_depth`: an int >= 0 or the string `"all"`."""
    if unfreeze_depth == "all":
        return "all"
    if isinstance(unfreeze_depth, bool) or not isinstance(unfreeze_depth, int):
        raise ValueError(
            "Expected unfreeze_depth to be an int >= 0 or 'all'. "
            f"Received: unfreeze_depth={unfreeze_depth!r}"
        )
    if unfreeze_depth < 0:
        raise ValueError(
            "Expected unfreeze_depth to be an int >= 0 or 'all'. "
            f"Received: unfreeze_depth={unfreeze_depth}"
        )
    return unfreeze_depth


def is_batchnorm(layer: Any) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization) or (
        "BatchNorm" in type(layer).__name__
    )


def _children(layer: Any) -> list:
    if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
        try:
            return list(layer.layers)
        except AttributeError:
            pass
    return list(getattr(layer, "_layers", []))


def trainable_units(backbone: Any) -> list:
    """Returns the backbone's weight-holding units, input end first.

    A unit is a leaf layer with weights (BatchNormalization excluded: it follows
    `train_batchnorm`), or a whole transformer block.
    """
    units: list = []

    def visit(layer: Any) -> None:
        if is_block(layer) and layer.weights:
            units.append(layer)
            return
        children = _children(layer)
        if not children:
            if layer.weights and not is_batchnorm(layer):
                units.append(layer)
            return
        for child in children:
            visit(child)

    visit(backbone)
    seen: set[int] = set()
    unique = []
    for u in units:
        if id(u) not in seen:
            seen.add(id(u))
            unique.append(u)
    return unique


def is_block(layer: Any) -> bool:
    return bool(_BLOCK_PATTERN.match(type(layer).__name__))


def depth_units(backbone: Any) -> list:
    """The units `unfreeze_depth=N` counts: transformer blocks if any, else layers.

    `len(depth_units(backbone))` is the largest valid `unfreeze_depth`.
    """
    units = trainable_units(backbone)
    blocks = [u for u in units if is_block(u)]
    return blocks or units


def _all_layers(layer: Any) -> list:
    out = [layer]
    for child in _children(layer):
        out.extend(_all_layers(child))
    return out


def set_trainable(
    model_or_backbone: Any,
    unfreeze_depth: UnfreezeDepth,
    *,
    train_batchnorm: bool = False,
    recompile: bool = True,
) -> Any:
    """Sets which part of a backbone trains.

    Given a model made by keras-transfer's builders (or any model with a nested
    backbone model), the policy applies to the backbone and the head stays trainable.
    Given a bare backbone, it applies to it directly.

    Args:
        model_or_backbone: keras.Model or keras.layers.Layer.
        unfreeze_depth: int or str. `0`: frozen (feature extraction). `"all"`: fully
            trainable. `N > 0`: the top N weight-holding layers train, counted from the
            output end (a transformer block counts as one unit).
        train_batchnorm: bool. Let BatchNormalization layers in the trainable part
            train (and so use batch statistics). Defaults to False.
        recompile: bool. If the model (or a model built around the backbone) is
            compiled, recompile it with a fresh optimizer of the same configuration.
            Defaults to True.

    Returns:
        The model or backbone passed in.

    Raises:
        ValueError: `unfreeze_depth` is invalid or larger than the backbone's depth.

    Examples:
    ```python
    import keras
    from keras_transfer import set_trainable
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(8)]
    )
    set_trainable(backbone, 1)
    assert [layer.trainable for layer in backbone.layers] == [False, True]
    ```
    """
    depth = check_unfreeze_depth(unfreeze_depth)
    target = model_or_backbone
    backbone = find_backbone(target) if isinstance(target, keras.Model) else None
    backbone = backbone if backbone is not None else target
    if backbone is not target:
        set_layer_trainable(
            target, True
        )  # the head trains; the backbone follows the policy
    if depth == 0:
        set_layer_trainable(backbone, False)
    else:
        set_layer_trainable(backbone, True)
        units = trainable_units(backbone)
        counted = depth_units(backbone)
        if depth != "all":
            if depth > len(counted):
                raise ValueError(
                    f"unfreeze_depth={depth} exceeds the backbone's depth: it has "
                    f"{len(counted)} weight-holding layers (or transformer blocks). "
                    f"Use a value in [0, {len(counted)}] or 'all'."
                )
            # Everything from the lowest selected unit upwards trains (for
            # transformers: the top N blocks plus the pooler/norm above them).
            first = units.index(counted[len(counted) - depth])
            for unit in units[:first]:
                set_layer_trainable(unit, False)
        if not train_batchnorm:
            for layer in _all_layers(backbone):
                if is_batchnorm(layer):
                    set_layer_trainable(layer, False)
    if recompile:
        parents = {id(p): p for p in _PARENTS.get(backbone, ())}
        if isinstance(target, keras.Model):
            parents[id(target)] = target
        for parent in parents.values():
            if getattr(parent, "compiled", False) and parent.optimizer is not None:
                _recompile(parent)
    return model_or_backbone


def count_params(weights: list) -> int:
    return int(sum(int(keras.ops.size(w)) for w in weights))


def trainable_summary(model: Any, print_fn: Any = print) -> dict:
    """Prints which layers train and how many parameters, and returns the numbers.

    Args:
        model: keras.Model or keras.layers.Layer.
        print_fn: callable. Where lines go. Defaults to `print`; pass None to
            print nothing.

    Returns:
        A dict with `trainable_params`, `non_trainable_params`, `total_params` and
        `layers`: a list of `(name, class_name, trainable, n_trainable_params)`.

    Examples:
    ```python
    import keras
    from keras_transfer import trainable_summary
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert trainable_summary(model, print_fn=None)["trainable_params"] == 10
    ```
    """
    rows = []
    backbone = find_backbone(model) if isinstance(model, keras.Model) else None
    layers = _children(model) if backbone is None else _children(model)
    for layer in layers:
        if layer is backbone:
            for unit in trainable_units(backbone):
                rows.append(
                    (
                        f"{backbone.name}/{unit.name}",
                        type(unit).__name__,
                        bool(unit.trainable_weights),
                        count_params(unit.trainable_weights),
                    )
                )
            continue
        if layer.weights:
            rows.append(
                (
                    layer.name,
                    type(layer).__name__,
                    bool(layer.trainable_weights),
                    count_params(layer.trainable_weights),
                )
            )
    trainable = count_params(model.trainable_weights)
    non_trainable = count_params(model.non_trainable_weights)
    result = {
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_params": trainable + non_trainable,
        "layers": rows,
    }
    if print_fn is not None:
        width = max([len(r[0]) for r in rows] + [10])
        print_fn(f"{'layer':<{width}}  {'class':<24} trains  params")
        for name, cls, trains, n in rows:
            print_fn(
                f"{name:<{width}}  {cls:<24} {'yes' if trains else 'no':<6}  {n:,}"
            )
        print_fn(
            f"trainable params: {trainable:,} / total {trainable + non_trainable:,}"
        )
    return result
