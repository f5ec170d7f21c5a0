"""Compile recipes: keras-transfer's default losses, metrics and optimizers.

(Over 400 lines on purpose: the compile recipe and the optimizers it builds --
default, discriminative, XLA and mixed-precision settings -- are one record.)

`compile_model` compiles a model and records its arguments in the documented attribute
`model.compile_recipe` (a dict of `compile_model` keyword arguments), so `recompile`
(called by `freezing.set_trainable` when trainability changes) rebuilds the same recipe
with a fresh optimizer. A model compiled otherwise (or loaded from a `.keras` file, which
does not store the attribute) is recompiled from `model.get_compile_config()`. This
module sits below `freezing` and `builders`: both import it, it imports neither.
"""

from __future__ import annotations

import re
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import find_backbone
from keras_transfer.precision import check_policy, set_precision


def _check_lr(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(
            f"Expected {name} to be a number > 0. Received: {name}={value!r}"
        )


def _optimizer(learning_rate: float, weight_decay: float | None) -> Any:
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(learning_rate)


def _check_jit(jit_compile: Any) -> None:
    if jit_compile not in (True, False, "auto"):
        raise ValueError(
            "Expected jit_compile to be True, False or 'auto'. Received: "
            f"jit_compile={jit_compile!r}"
        )


def resolve_jit_compile(model: keras.Model, jit_compile: bool | str) -> bool | str:
    """What `"auto"` means for `jit_compile`: Keras' own choice.

    Keras' `"auto"` uses XLA on a GPU (when every layer supports it, outside a
    distribution strategy) and not on a CPU-only machine.
    `benchmarks/compiled_steps.py` measured XLA on CPU for the small CNN,
    MobileNetV3Small and the MiniLM classifier (docs/performance.md): it is kept
    off by default there. Explicit True/False pass through.
    """
    _check_jit(jit_compile)
    return jit_compile


def discriminative_optimizer(
    model: keras.Model, backbone: keras.Model, head_opt: Any, backbone_opt: Any
) -> Any:
    """A `MultiOptimizer` giving the backbone's variables `backbone_opt`.

    The assignment is stored by variable path (an `OptimizerMap` whose one key
    matches exactly the backbone's variable paths), not by Python object, so the
    optimizer, its learning rates and its state survive `model.save` and
    `keras_transfer.load_model` (or plain `keras.saving.load_model`).

    Args:
        model: keras.Model. The whole model.
        backbone: keras.Model. The nested backbone of `model`.
        head_opt: keras Optimizer. For every variable outside the backbone.
        backbone_opt: keras Optimizer. For the backbone's variables.

    Returns:
        A `keras.optimizers.MultiOptimizer`.

    Raises:
        ValueError: a variable outside the backbone has the same path as one inside
            it (rename the layer), so the two could not be told apart.

    Examples:
    ```python
    from keras_transfer import build_classifier
    model = build_classifier("keras_applications:MobileNetV3Small", 3, weights=None,
                             input_shape=(32, 32, 3), backbone_learning_rate=1e-5)
    rates = sorted(float(o.learning_rate) for o in model.optimizer.optimizers)
    assert abs(rates[0] - 1e-5) < 1e-9 and abs(rates[1] - 1e-3) < 1e-9
    ```
    """
    backbone_ids = {id(v) for v in backbone.weights}
    # A variable's path may or may not start with the backbone's name: a backbone
    # built on its own (a Sequential with an Input) has "conv/kernel" after a
    # reload where it had "<backbone>/conv/kernel" before. Match both forms.
    prefix = f"{backbone.name}/"
    relative = sorted(
        {
            v.path[len(prefix) :] if v.path.startswith(prefix) else v.path
            for v in backbone.weights
        }
    )
    accepted = {*relative, *(prefix + r for r in relative)}
    clashes = sorted(
        v.path
        for v in model.weights
        if id(v) not in backbone_ids and v.path in accepted
    )
    if clashes:
        raise ValueError(
            "backbone_learning_rate assigns optimizers by variable path, and these "
            f"variables outside the backbone share a path with backbone ones: "
            f"{clashes[:5]}. Give those layers other names."
        )
    optional = f"(?:{re.escape(prefix)})?"
    pattern = optional + "(?:" + "|".join(re.escape(r) for r in relative) + ")"
    mapping = keras.optimizers.OptimizerMap(head_opt, {pattern: backbone_opt})
    return keras.optimizers.MultiOptimizer(mapping)


def default_optimizer(
    model: keras.Model,
    learning_rate: float = 1e-3,
    *,
    backbone_learning_rate: float | None = None,
    weight_decay: float | None = None,
) -> Any:
    """The optimizer `compile_model` uses, for models compiled another way.

    Adam (AdamW with `weight_decay`); with `backbone_learning_rate`, a
    `discriminative_optimizer` giving the backbone (`find_backbone(model)`) that
    rate. `build_multitask` compiles its per-task losses with it.

    Args:
        model: keras.Model. The model the optimizer is for (only read with
            `backbone_learning_rate`).
        learning_rate: float. Learning rate of the head (and of the backbone unless
            `backbone_learning_rate` is given). Defaults to 1e-3.
        backbone_learning_rate: float or None. Learning rate of the backbone's
            variables. Defaults to None.
        weight_decay: float or None. Decoupled weight decay (AdamW). Defaults to
            None.

    Returns:
        A Keras optimizer.

    Raises:
        ValueError: a learning rate is not a number > 0, or `backbone_learning_rate`
            is given for a model without a backbone.

    Examples:
    ```python
    import keras
    from keras_transfer.compiling import default_optimizer
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert isinstance(default_optimizer(model, 1e-3, weight_decay=1e-4),
                      keras.optimizers.AdamW)
    ```
    """
    _check_lr("learning_rate", learning_rate)
    if backbone_learning_rate is None:
        return _optimizer(learning_rate, weight_decay)
    _check_lr("backbone_learning_rate", backbone_learning_rate)
    backbone = find_backbone(model)
    if backbone is None:
        raise ValueError(
            "backbone_learning_rate needs a model with a nested backbone model; "
            "this model has none."
        )
    return discriminative_optimizer(
        model,
        backbone,
        _optimizer(learning_rate, weight_decay),
        _optimizer(backbone_learning_rate, weight_decay),
    )


def compile_model(
    model: keras.Model,
    *,
    task: str = "classification",
    learning_rate: float = 1e-3,
    backbone_learning_rate: float | None = None,
    weight_decay: float | None = None,
    multi_label: bool = False,
    label_smoothing: float | None = None,
    loss: Any = None,
    metrics: Any = None,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
) -> keras.Model:
    """Compiles a builder-made model with keras-transfer's defaults.

    Classification: Adam (AdamW with `weight_decay`), sparse categorical
    cross-entropy on probabilities, accuracy. Multi-label: binary cross-entropy,
    binary accuracy and AUC. Regression: mean squared error and MAE.

    Args:
        model: keras.Model.
        task: str. `"classification"` or `"regression"`.
        learning_rate: float. Learning rate of the head (and of the backbone unless
            `backbone_learning_rate` is given). Defaults to 1e-3.
        backbone_learning_rate: float or None. Discriminative learning rate for the
            backbone's variables (a `keras.optimizers.MultiOptimizer`).
        weight_decay: float or None. Decoupled weight decay (AdamW).
        multi_label: bool. Classification with independent sigmoid outputs.
        label_smoothing: float or None. When set (0 included), single-label
            classification uses `augment.SmoothedCrossentropy` and
            `augment.LabelAccuracy`, which take integer or soft (MixUp/CutMix)
            labels; multi-label uses binary cross-entropy with this smoothing.
        loss: Overrides the default loss.
        metrics: Overrides the default metrics.
        jit_compile: bool or `"auto"`. Compile the train, test and predict steps
            with XLA. `"auto"`: see `resolve_jit_compile` (measured in
            `benchmarks/compiled_steps.py`). Defaults to `"auto"`.
        mixed_precision: str or None. `"mixed_bfloat16"` or `"mixed_float16"`
            computes the backbone in that precision (`set_precision`; the head,
            the outputs and the loss stay float32; `"mixed_float16"` adds loss
            scaling); None or `"float32"` leaves the model's layers as they are.
            Defaults to None.

    Returns:
        The model, compiled.

    Raises:
        ValueError: a bad `task`, learning rate, `jit_compile` or
            `mixed_precision`.

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier
    from keras_transfer.compiling import compile_model
    model = build_classifier("keras_applications:MobileNetV3Small", 3,
                             weights=None, input_shape=(32, 32, 3), compile=False)
    compile_model(model, jit_compile=False, mixed_precision="mixed_bfloat16")
    x = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).dtype == np.float32
    ```
    """
    _check_lr("learning_rate", learning_rate)
    _check_jit(jit_compile)
    if mixed_precision not in (None, "float32"):
        set_precision(model, mixed_precision)
    elif mixed_precision is not None:
        check_policy(mixed_precision)
    with model.distribute_strategy.scope():
        return _compile_model(
            model,
            task=task,
            learning_rate=learning_rate,
            backbone_learning_rate=backbone_learning_rate,
            weight_decay=weight_decay,
            multi_label=multi_label,
            label_smoothing=label_smoothing,
            loss=loss,
            metrics=metrics,
            jit_compile=jit_compile,
            mixed_precision=mixed_precision,
        )


def _compile_model(
    model: keras.Model,
    *,
    task: str,
    learning_rate: float,
    backbone_learning_rate: float | None,
    weight_decay: float | None,
    multi_label: bool,
    label_smoothing: float | None,
    loss: Any,
    metrics: Any,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
) -> keras.Model:
    if task not in ("classification", "regression"):
        raise ValueError(
            "Expected task to be 'classification' or 'regression'. "
            f"Received: task={task!r}"
        )
    optimizer = default_optimizer(
        model,
        learning_rate,
        backbone_learning_rate=backbone_learning_rate,
        weight_decay=weight_decay,
    )
    if task == "classification" and label_smoothing is not None and loss is None:
        from keras_transfer.augment import smoothed_loss_and_metrics

        loss, metrics = smoothed_loss_and_metrics(label_smoothing, multi_label, metrics)
    if task == "regression":
        loss = loss or "mse"
        metrics = metrics if metrics is not None else ["mae"]
    elif multi_label:
        loss = loss or "binary_crossentropy"
        metrics = (
            metrics
            if metrics is not None
            else [
                keras.metrics.BinaryAccuracy(name="accuracy"),
                keras.metrics.AUC(multi_label=True, name="auc"),
            ]
        )
    else:
        loss = loss or "sparse_categorical_crossentropy"
        metrics = (
            metrics
            if metrics is not None
            else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        )
    if mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        jit_compile=resolve_jit_compile(model, jit_compile),
    )
    # The recipe `recompile` rebuilds (an explicit attribute, like keras-hub's
    # `Task.backbone`; not saved in `.keras` files).
    model.compile_recipe = {
        "task": task,
        "learning_rate": learning_rate,
        "backbone_learning_rate": backbone_learning_rate,
        "weight_decay": weight_decay,
        "multi_label": multi_label,
        "label_smoothing": label_smoothing,
        "loss": loss if isinstance(loss, str) else None,
        "jit_compile": jit_compile,
        "mixed_precision": mixed_precision,
        # Which compile this recipe describes: after a hand-written model.compile,
        # recompile follows that compile instead of reverting to this recipe.
        "optimizer_id": id(model.optimizer),
    }
    return model


def recompile(
    model: keras.Model,
    *,
    learning_rate: float | None = None,
    backbone_learning_rate: float | None = None,
    jit_compile: bool | str | None = None,
) -> keras.Model:
    """Recompiles `model` with a fresh optimizer of the same configuration.

    Needed after trainability changes, so `fit` traces a new train function over the
    new trainable weights. A model with a `compile_recipe` (set by `compile_model`,
    and not compiled by hand since) is compiled again from it; others are recompiled
    from `model.get_compile_config()`.

    Args:
        model: keras.Model. A compiled model.
        learning_rate: float or None. New learning rate (else the previous one).
        backbone_learning_rate: float or None. New discriminative backbone rate.
        jit_compile: bool, `"auto"` or None. New XLA setting (else the previous).

    Returns:
        The model.

    Raises:
        ValueError: the model was never compiled, or a new learning rate cannot be
            set on its optimizer.
    """
    args = getattr(model, "compile_recipe", None)
    if args is not None and args.get("optimizer_id") != id(model.optimizer):
        args = None  # compiled by hand since compile_model: recompile that compile
    if args is not None:
        args = dict(args)
        args.pop("optimizer_id", None)
        if learning_rate is not None:
            args["learning_rate"] = learning_rate
        if backbone_learning_rate is not None:
            args["backbone_learning_rate"] = backbone_learning_rate
        if jit_compile is not None:
            args["jit_compile"] = jit_compile
        loss = args.pop("loss")
        return compile_model(model, loss=loss, **args)
    config = model.get_compile_config()
    if config is None:
        raise ValueError("Cannot recompile a model that was never compiled.")
    if learning_rate is not None:
        opt = config["optimizer"]
        opt_config = opt.get("config", opt) if isinstance(opt, dict) else None
        if opt_config is None or "learning_rate" not in opt_config:
            raise ValueError(
                "Cannot set learning_rate: the model's optimizer config has none. "
                "Compile it yourself."
            )
        opt_config["learning_rate"] = learning_rate
    if jit_compile is not None:
        _check_jit(jit_compile)
        config["jit_compile"] = resolve_jit_compile(model, jit_compile)
    with model.distribute_strategy.scope():
        if backbone_learning_rate is not None:
            config["optimizer"] = _discriminative_from_config(
                model, config["optimizer"], backbone_learning_rate
            )
        model.compile_from_config(config)
    return model


def _discriminative_from_config(
    model: keras.Model, opt: Any, backbone_learning_rate: float
) -> dict:
    """A serialized `discriminative_optimizer` built from a plain optimizer config."""
    _check_lr("backbone_learning_rate", backbone_learning_rate)
    backbone = find_backbone(model)
    opt_config = opt.get("config") if isinstance(opt, dict) else None
    if backbone is None or not isinstance(opt_config, dict):
        raise ValueError(
            "Expected a model with a nested backbone and a single-optimizer compile "
            "config to set backbone_learning_rate. Received: a model with "
            f"backbone={getattr(backbone, 'name', None)!r} and optimizer="
            f"{opt.get('class_name') if isinstance(opt, dict) else opt!r}. Compile "
            "it with keras_transfer.compile_model(model, backbone_learning_rate=...)."
        )
    backbone_opt = {**opt, "config": {**opt_config}}
    backbone_opt["config"]["learning_rate"] = backbone_learning_rate
    optimizer = discriminative_optimizer(
        model,
        backbone,
        keras.optimizers.deserialize(opt),
        keras.optimizers.deserialize(backbone_opt),
    )
    return keras.optimizers.serialize(optimizer)
