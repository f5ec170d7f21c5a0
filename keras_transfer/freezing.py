"""Trainable policy: frozen, fully trainable, or the top N layers / transformer blocks.

BatchNormalization layers with trained (pretrained) statistics stay frozen -- and
so, in Keras 3, in inference mode -- unless `train_batchnorm=True` (the keras.io
fine-tuning rule); with `train_batchnorm="auto"` (the default) those whose statistics
have never been trained (a backbone without pretrained weights: nothing to protect,
and frozen at mean 0 / variance 1 they normalise nothing) train with their part of
the backbone. A compiled model whose
trainability changes is recompiled with a fresh optimizer (`compiling.recompile`), so
`fit` never runs a stale train function over the old trainable weights.

This module is the one home of the policy (text encoders and keras-hub backbones use
it too), of the transformer-block detector (`is_block`, `transformer_blocks`) and of
`count_params`. A model names its backbone explicitly with `model.backbone` (set by
the builders; see `backbones.find_backbone` for the fallback).

(Over 400 lines on purpose: the one trainable policy -- depth, transformer blocks,
BatchNorm under `train_batchnorm` -- and the counts that report it, kept together so
that every builder, phase and tuner trial applies the same rule.)
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import find_backbone
from keras_transfer.compiling import recompile as _recompile
from keras_transfer.normalization import UNTRAINED_FLAG, is_fresh_batchnorm
from keras_transfer.trainability import set_layer_trainable

UnfreezeDepth = int | str
TrainBatchnorm = bool | str

logger = logging.getLogger("keras_transfer")

# The one transformer-block detector (by class name): keras-hub's TransformerEncoder
# and TransformerDecoder, and the *EncoderLayer/*DecoderLayer/*Block classes of its
# model families. Transformer blocks count as one unit for unfreeze_depth=N.
_BLOCK_PATTERN = re.compile(
    r"(Transformer(Encoder|Decoder|Layer|Block)|EncoderBlock|DecoderBlock|"
    r"CachedGemmaDecoderBlock|.*DecoderLayer|.*EncoderLayer)$"
)


def register_parent(backbone: Any, model: Any) -> None:
    """Deprecated, does nothing: a model names its backbone with `model.backbone`.

    Kept for one release. `set_trainable(model, ...)` recompiles `model`; after
    changing a bare backbone, call `recompile(model)` (or pass the model).
    """
    warnings.warn(
        "keras_transfer.freezing.register_parent is deprecated and does nothing; it "
        "will be removed in the next release. Set model.backbone = backbone instead "
        "(the builders do).",
        DeprecationWarning,
        stacklevel=2,
    )


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


def check_train_batchnorm(train_batchnorm: Any) -> TrainBatchnorm:
    """Validates `train_batchnorm`: True, False or `"auto"`.

    Examples:
    ```python
    from keras_transfer.freezing import check_train_batchnorm
    assert check_train_batchnorm("auto") == "auto"
    ```
    """
    if isinstance(train_batchnorm, bool) or train_batchnorm == "auto":
        return train_batchnorm
    raise ValueError(
        "Expected train_batchnorm to be True, False or 'auto' (BatchNorm layers "
        "whose statistics have never been trained train, pretrained ones stay "
        f"frozen). Received: train_batchnorm={train_batchnorm!r}"
    )


def _trains_by_auto(layer: Any, newly: list) -> bool:
    """`train_batchnorm="auto"`: a layer with untrained statistics trains, and keeps
    training in later calls (a later phase or gradual stage), after its statistics
    have moved."""
    if getattr(layer, UNTRAINED_FLAG, False):
        return True
    if is_fresh_batchnorm(layer):
        setattr(layer, UNTRAINED_FLAG, True)
        newly.append(layer)
        return True
    return False


def _say_auto(backbone: Any, layers: list) -> None:
    if not layers:
        return
    message = (
        f"[trainable] {backbone.name}: {len(layers)} BatchNormalization layer(s) "
        "whose statistics have never been trained train with the backbone "
        "(train_batchnorm='auto'; pretrained ones stay frozen, False freezes all)"
    )
    logger.info(message)
    print(message)


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
    return [layer for layer in _leaves_in_order(backbone) if not is_batchnorm(layer)]


def _leaves_in_order(backbone: Any) -> list:
    """The units of `trainable_units` and the BatchNorm layers between them, in the
    same input-first order."""
    leaves: list = []

    def visit(layer: Any) -> None:
        if is_block(layer) and layer.weights:
            leaves.append(layer)
            return
        children = _children(layer)
        if not children:
            if layer.weights:
                leaves.append(layer)
            return
        for child in children:
            visit(child)

    visit(backbone)
    return list({id(layer): layer for layer in leaves}.values())


def is_block(layer: Any) -> bool:
    """Whether `layer` is a transformer block (the one detector, by class name)."""
    return bool(_BLOCK_PATTERN.match(type(layer).__name__))


def transformer_blocks(backbone: Any) -> list:
    """Returns the transformer blocks of `backbone`, input end first.

    Args:
        backbone: keras.Model or keras.layers.Layer.

    Returns:
        A list of the blocks `is_block` detects (empty for a CNN).

    Examples:
    ```python
    import keras_hub
    from keras_transfer.freezing import transformer_blocks
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8,
    )
    assert len(transformer_blocks(backbone)) == 2
    ```
    """
    return [unit for unit in trainable_units(backbone) if is_block(unit)]


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


def _unused_layers(target: Any, backbone: Any) -> list:
    """Backbone layers the holder of `backbone` declares unused (no gradient).

    A layer holding a backbone (`layer.backbone`) may define
    `unused_backbone_layers()`, e.g. `TextEncoder` with mean pooling lists the BERT
    pooler. Those stay frozen: they would get no gradient.
    """
    unused = []
    for holder in [target, *_children(target)]:
        if getattr(holder, "backbone", None) is backbone and hasattr(
            holder, "unused_backbone_layers"
        ):
            unused.extend(holder.unused_backbone_layers())
    return unused


def set_trainable(
    model_or_backbone: Any,
    unfreeze_depth: UnfreezeDepth,
    *,
    train_batchnorm: TrainBatchnorm = "auto",
    recompile: bool = True,
) -> Any:
    """Sets which part of a backbone trains.

    Given a model that names its backbone (`model.backbone`, set by the builders and
    by keras-hub tasks, or a `TextEncoder`) or holds a nested backbone model (see
    `find_backbone`), the policy applies to the backbone and the rest stays
    trainable (except backbone layers its holder declares unused through
    `unused_backbone_layers()`, such as a BERT pooler a mean-pooling `TextEncoder`
    ignores). Given a bare backbone, it applies to it directly. A compiled model is
    recompiled; a bare backbone used inside a model is not, as it cannot know that
    model: call `recompile(model)` before `fit` (a warning says so), or pass the model.

    Args:
        model_or_backbone: keras.Model or keras.layers.Layer.
        unfreeze_depth: int or str. `0`: frozen (feature extraction). `"all"`: fully
            trainable. `N > 0`: the top N weight-holding layers train, counted from the
            output end (a transformer block counts as one unit).
        train_batchnorm: bool or `"auto"`. Let BatchNormalization layers in the
            trainable part train (and so use batch statistics). False keeps every
            one frozen and in inference mode (the keras.io rule for pretrained
            statistics); `"auto"` lets those whose statistics have never been
            trained (`normalization.is_fresh_batchnorm`: a backbone without
            pretrained weights) train and keeps the others frozen. Defaults to
            `"auto"`.
        recompile: bool. If the model passed is compiled, recompile it with a fresh
            optimizer of the same recipe (`compiling.recompile`). Defaults to True.

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
    check_train_batchnorm(train_batchnorm)
    target = model_or_backbone
    backbone = find_backbone(target)
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
                    f"Expected unfreeze_depth to be an int in [0, {len(counted)}] or "
                    f"'all': the backbone {backbone.name!r} has {len(counted)} "
                    "weight-holding layers (or transformer blocks), counted from the "
                    f"output end. Received: unfreeze_depth={depth}"
                )
            # Everything from the lowest selected unit upwards trains (for
            # transformers: the top N blocks plus the pooler/norm above them).
            first = units.index(counted[len(counted) - depth])
            for unit in units[:first]:
                set_layer_trainable(unit, False)
            # BatchNorm layers below the lowest selected unit are frozen part too.
            leaves = _leaves_in_order(backbone)
            for layer in leaves[: leaves.index(units[first])]:
                if is_batchnorm(layer):
                    set_layer_trainable(layer, False)
        if train_batchnorm is not True:
            newly = []
            for layer in _all_layers(backbone):
                if not is_batchnorm(layer):
                    continue
                if train_batchnorm == "auto" and _trains_by_auto(layer, newly):
                    continue
                set_layer_trainable(layer, False)
            _say_auto(backbone, [layer for layer in newly if layer.trainable])
        for layer in _unused_layers(target, backbone):
            set_layer_trainable(layer, False)
    if not recompile:
        return model_or_backbone
    compiled = getattr(target, "compiled", False) and (
        getattr(target, "optimizer", None) is not None
    )
    if isinstance(target, keras.Model) and compiled:
        _recompile(target)
    if backbone is target and getattr(target, "_inbound_nodes", None):
        warnings.warn(
            f"set_trainable changed {target.name!r}, which is used inside another "
            "model; that model is not recompiled, so its next fit would train the old "
            "trainable weights. Call keras_transfer.recompile(model) before fit, or "
            "pass the model: set_trainable(model, ...) applies the policy to "
            "model.backbone and recompiles.",
            stacklevel=2,
        )
    return model_or_backbone


def _n_params(weights: list) -> int:
    return int(sum(int(keras.ops.size(w)) for w in weights))


def count_params(model: Any) -> dict[str, int]:
    """Counts a model's trainable and frozen parameters.

    Args:
        model: keras.Model or keras.layers.Layer. (A list of weights, the old
            signature, still returns their size as an int, with a
            DeprecationWarning, for one release.)

    Returns:
        `{"trainable": n, "non_trainable": m, "total": n + m}`.

    Examples:
    ```python
    import keras
    from keras_transfer.freezing import count_params, set_trainable
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)]
    )
    set_trainable(backbone, 1)
    assert count_params(backbone) == {"trainable": 18, "non_trainable": 40,
                                      "total": 58}
    ```
    """
    if isinstance(model, list | tuple):
        warnings.warn(
            "count_params(weights) is deprecated: pass the model or layer "
            "(count_params(model) returns trainable, non_trainable and total).",
            DeprecationWarning,
            stacklevel=2,
        )
        return _n_params(list(model))
    trainable = _n_params(model.trainable_weights)
    frozen = _n_params(model.non_trainable_weights)
    return {
        "trainable": trainable,
        "non_trainable": frozen,
        "total": trainable + frozen,
    }


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
    for layer in _children(model):
        # The backbone, or the layer holding it (a TextEncoder): one row per unit.
        if backbone is not None and (
            layer is backbone or getattr(layer, "backbone", None) is backbone
        ):
            for unit in trainable_units(backbone):
                rows.append(
                    (
                        f"{backbone.name}/{unit.name}",
                        type(unit).__name__,
                        bool(unit.trainable_weights),
                        _n_params(unit.trainable_weights),
                    )
                )
            continue
        if layer.weights:
            rows.append(
                (
                    layer.name,
                    type(layer).__name__,
                    bool(layer.trainable_weights),
                    _n_params(layer.trainable_weights),
                )
            )
    counts = count_params(model)
    trainable, non_trainable = counts["trainable"], counts["non_trainable"]
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
