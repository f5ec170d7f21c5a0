"""Builders: a backbone plus a new head, compiled and ready for `model.fit`.

A built model knows its parts explicitly, as a keras-hub `Task` does:
`model.backbone` is the backbone layer (`find_backbone`, `set_trainable` and
`fine_tune` use it) and `model.compile_recipe` the `compile_model` arguments that
`recompile` rebuilds. Neither is saved in a `.keras` file: a loaded model falls back
to `find_backbone`'s guess and to its saved compile config.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import (
    LoadedBackbone,
    load_backbone,
    warn_if_frozen_batchnorm_random,
    warn_if_frozen_random,
)
from keras_transfer.compiling import (
    compile_model,
    discriminative_optimizer,
    recompile,
)
from keras_transfer.freezing import set_trainable
from keras_transfer.heads import classification_head, regression_head
from keras_transfer.normalization import (
    check_batchnorm_momentum,
    set_batchnorm_momentum,
)

# compile_model, recompile and discriminative_optimizer live in `compiling` (below
# `freezing`, which recompiles); they stay importable from here.
__all__ = [
    "build_classifier",
    "build_regressor",
    "compile_model",
    "discriminative_optimizer",
    "inputs_and_features",
    "recompile",
]


def inputs_and_features(
    bb: LoadedBackbone,
    input_shape: tuple | None = None,
    include_preprocessing: bool = True,
    augmentation: Any = None,
) -> tuple[Any, Any]:
    """Makes a model's inputs and runs the backbone on them (shared by the builders).

    Args:
        bb: LoadedBackbone. See `load_backbone`.
        input_shape: tuple or None. Shape of one raw input; None uses the
            backbone's. Ignored for text backbones (their inputs are the
            backbone's). Defaults to None.
        include_preprocessing: bool. Run the backbone's preprocessor first.
            Defaults to True.
        augmentation: keras.layers.Layer or None. Applied to the raw inputs before
            preprocessing. Defaults to None.

    Returns:
        `(inputs, features)`: a `keras.Input` (a dict of them for text) and the
        backbone's symbolic output.

    Raises:
        ValueError: neither `input_shape` nor the backbone gives an input shape.

    Examples:
    ```python
    from keras_transfer import load_backbone
    from keras_transfer.builders import inputs_and_features
    bb = load_backbone(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    inputs, features = inputs_and_features(bb)
    assert tuple(inputs.shape) == (None, 32, 32, 3) and len(features.shape) == 4
    ```
    """
    if bb.modality == "text":
        inputs = {
            name: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=name)
            for name, t in bb.model.input.items()
        }
        return inputs, bb.model(inputs)
    shape = tuple(input_shape) if input_shape is not None else bb.input_shape
    if shape is None:
        raise ValueError(
            f"The backbone {bb.spec!r} does not declare its input shape. Pass "
            "input_shape=..., e.g. input_shape=(224, 224, 3)."
        )
    inputs = keras.Input(shape=shape, name="inputs")
    x = inputs if augmentation is None else augmentation(inputs)
    if include_preprocessing and bb.preprocessor is not None:
        x = bb.preprocessor(x)
    try:
        return inputs, bb.model(x)
    except ValueError as err:
        if "output size would be zero or negative" not in str(err):
            raise
        raise ValueError(
            f"Expected an input_shape large enough for the backbone {bb.spec!r}: its "
            f"downsampling reduces {shape} to nothing. Received: input_shape={shape}. "
            "Use larger images (32 x 32 or more for most keras.applications "
            "backbones, which were trained at 224) or a backbone that downsamples "
            "less."
        ) from err


def _build(
    kind: str,
    backbone: Any,
    head_fn: Any,
    *,
    unfreeze_depth: Any,
    train_batchnorm: bool | str,
    input_shape: tuple | None,
    include_preprocessing: bool,
    compile_kwargs: dict,
    compile: bool,
    strategy: Any,
    name: str | None,
    backbone_kwargs: dict,
    augmentation: Any = None,
    batchnorm_momentum: float | str | None = "auto",
) -> keras.Model:
    from keras_transfer.distribute import maybe_distribute

    check_batchnorm_momentum(batchnorm_momentum)
    with maybe_distribute(strategy):
        bb = load_backbone(backbone, **backbone_kwargs)
        warn_if_frozen_random(bb, unfreeze_depth)
        warn_if_frozen_batchnorm_random(bb, unfreeze_depth, train_batchnorm)
        set_batchnorm_momentum(
            bb.model, batchnorm_momentum, label=f"backbone {bb.spec!r}", verbose=True
        )
        inputs, features = inputs_and_features(
            bb, input_shape, include_preprocessing, augmentation
        )
        outputs = head_fn(features)
        model = keras.Model(inputs, outputs, name=name or kind)
        model.backbone = bb.model  # explicit, as keras-hub's Task.backbone
        set_trainable(
            model, unfreeze_depth, train_batchnorm=train_batchnorm, recompile=False
        )
        if compile:
            compile_model(model, **compile_kwargs)
    return model


def build_classifier(
    backbone: Any,
    num_classes: int,
    *,
    unfreeze_depth: int | str = 0,
    dropout: float = 0.2,
    head: str = "linear",
    head_units: int = 256,
    multi_label: bool = False,
    pooling: str = "avg",
    train_batchnorm: bool | str = "auto",
    batchnorm_momentum: float | str | None = "auto",
    input_shape: tuple | None = None,
    learning_rate: float = 1e-3,
    backbone_learning_rate: float | None = None,
    weight_decay: float | None = None,
    label_smoothing: float | None = None,
    augmentation: Any = None,
    include_preprocessing: bool = True,
    compile: bool = True,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
    strategy: Any = None,
    name: str | None = None,
    **backbone_kwargs: Any,
) -> keras.Model:
    """Builds a classifier: backbone -> pooling -> head, compiled, ready for `fit`.

    Args:
        backbone: A spec string (`"keras_hub:..."`, `"tfhub:..."`,
            `"saved_model:..."`, `"keras_applications:..."`), a `LoadedBackbone` or a
            `keras.Model`/`Layer`. See `load_backbone`.
        num_classes: int. Number of classes.
        unfreeze_depth: int or str. `0` (frozen), `"all"`, or the top N
            weight-holding layers (transformer blocks). Defaults to 0.
        dropout: float. Dropout before the output layer. Defaults to 0.2.
        head: str. `"linear"` or `"mlp"`. Defaults to `"linear"`.
        head_units: int. Hidden width of the `"mlp"` head. Defaults to 256.
        multi_label: bool. Independent sigmoid outputs. Defaults to False.
        pooling: str. `"avg"` or `"max"` pooling of feature maps, or `"flatten"`
            (every position kept; see `heads.pool_features`). Defaults to `"avg"`.
        train_batchnorm: bool or `"auto"`. Let BatchNormalization train when
            unfrozen: `"auto"` trains those whose statistics have never been trained (a
            backbone without pretrained weights) and keeps pretrained ones frozen (the
            keras.io rule), as `set_trainable`. Defaults to `"auto"`.
        batchnorm_momentum: `"auto"`, float in [0, 1) or None. `"auto"`: the
            backbone's BatchNormalization layers that have never been trained
            (a backbone built without pretrained weights) use momentum 0.9 instead
            of a higher one, so that inference-mode statistics follow the weights
            (`normalization.set_batchnorm_momentum`); a float sets every one; None
            keeps theirs. Defaults to `"auto"`.
        input_shape: tuple or None. Raw input shape; required when the backbone
            does not declare one (TF-Hub modules).
        learning_rate: float. Defaults to 1e-3.
        backbone_learning_rate: float or None. A separate (usually lower) learning
            rate for the backbone (discriminative fine-tuning).
        weight_decay: float or None. Use AdamW with this decay.
        label_smoothing: float or None. Label smoothing; see `compile_model`.
        augmentation: `augment.AugmentationConfig`, a dict of its fields, a Keras
            layer, or None. Image augmentation goes inside the model (identity at
            inference; `augment.strip_augmentation` removes it for export); its
            `label_smoothing`/`weight_decay` fill those arguments when unset, and
            MixUp/CutMix switch the loss to one that takes soft labels (mix the
            data with `augment.mix_dataset`).
        include_preprocessing: bool. Put the backbone's preprocessor inside the
            model, so it takes raw inputs (e.g. images in [0, 255]). Defaults to True.
        compile: bool. Compile with the defaults of `compile_model`. Defaults to True.
        jit_compile: bool or `"auto"`. XLA steps; see `compile_model`. Defaults to
            `"auto"` (off on CPU, where it measured slower).
        mixed_precision: str or None. `"mixed_bfloat16"`/`"mixed_float16"` for the
            backbone, head and loss float32; see `compile_model`. Defaults to None.
        strategy: A `tf.distribute.Strategy`, a strategy name, or None. The model is
            built and compiled inside its scope.
        name: str or None. Model name.
        **backbone_kwargs: Passed to `load_backbone` (e.g. `weights=None`).

    Returns:
        A `keras.Model` whose output is class probabilities, with the attributes
        `backbone` (the backbone layer) and, when compiled, `compile_recipe` (the
        `compile_model` arguments `recompile` reuses); see the module docstring.

    Raises:
        ValueError: invalid arguments (each names the value received).

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier
    model = build_classifier(
        "keras_applications:MobileNetV3Small", 3, weights=None,
        input_shape=(32, 32, 3),
    )
    x = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (8, 3)
    ```
    """

    def head_fn(features: Any) -> Any:
        return classification_head(
            features,
            num_classes,
            head=head,
            dropout=dropout,
            multi_label=multi_label,
            head_units=head_units,
            pooling=pooling,
        )

    from keras_transfer.augment import builder_options

    aug_layer, aug_smoothing, aug_decay = builder_options(augmentation)
    if label_smoothing is None:
        label_smoothing = aug_smoothing
    if weight_decay is None:
        weight_decay = aug_decay
    return _build(
        "classifier",
        backbone,
        head_fn,
        unfreeze_depth=unfreeze_depth,
        train_batchnorm=train_batchnorm,
        batchnorm_momentum=batchnorm_momentum,
        input_shape=input_shape,
        include_preprocessing=include_preprocessing,
        compile_kwargs={
            "task": "classification",
            "learning_rate": learning_rate,
            "backbone_learning_rate": backbone_learning_rate,
            "weight_decay": weight_decay,
            "multi_label": multi_label,
            "label_smoothing": label_smoothing,
            "jit_compile": jit_compile,
            "mixed_precision": mixed_precision,
        },
        compile=compile,
        strategy=strategy,
        name=name,
        backbone_kwargs=backbone_kwargs,
        augmentation=aug_layer,
    )


def build_regressor(
    backbone: Any,
    num_outputs: int = 1,
    *,
    unfreeze_depth: int | str = 0,
    dropout: float = 0.0,
    head: str = "linear",
    head_units: int = 256,
    pooling: str = "avg",
    train_batchnorm: bool | str = "auto",
    batchnorm_momentum: float | str | None = "auto",
    input_shape: tuple | None = None,
    learning_rate: float = 1e-3,
    backbone_learning_rate: float | None = None,
    weight_decay: float | None = None,
    include_preprocessing: bool = True,
    compile: bool = True,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
    strategy: Any = None,
    name: str | None = None,
    **backbone_kwargs: Any,
) -> keras.Model:
    """Builds a regressor: backbone -> pooling -> linear outputs (MSE, MAE).

    Arguments are those of `build_classifier`, with `num_outputs` (int >= 1, defaults
    to 1) in place of `num_classes`.

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_regressor
    model = build_regressor(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    assert model.predict(np.zeros((2, 32, 32, 3)), verbose=0).shape == (2, 1)
    ```
    """

    def head_fn(features: Any) -> Any:
        return regression_head(
            features,
            num_outputs,
            head=head,
            dropout=dropout,
            head_units=head_units,
            pooling=pooling,
        )

    return _build(
        "regressor",
        backbone,
        head_fn,
        unfreeze_depth=unfreeze_depth,
        train_batchnorm=train_batchnorm,
        batchnorm_momentum=batchnorm_momentum,
        input_shape=input_shape,
        include_preprocessing=include_preprocessing,
        compile_kwargs={
            "task": "regression",
            "learning_rate": learning_rate,
            "backbone_learning_rate": backbone_learning_rate,
            "weight_decay": weight_decay,
            "jit_compile": jit_compile,
            "mixed_precision": mixed_precision,
        },
        compile=compile,
        strategy=strategy,
        name=name,
        backbone_kwargs=backbone_kwargs,
    )
