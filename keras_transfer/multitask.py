"""Multi-task models: one shared backbone, one head (and loss and metrics) per task.

``build_multitask(backbone, heads={"digit": "classification:10", "size": "regression"})``
returns a functional model whose output is a dict keyed by task name, compiled with
one loss and metric set per task and optional ``loss_weights``. ``fit`` takes labels as
a dict with the same keys; ``.keras`` files and ``model.export`` keep every output.

Head specs: ``"classification:N"`` (softmax), ``"multilabel:N"`` (sigmoid),
``"regression[:N]"`` (linear), or a dict ``{"type": ..., "units": N, "dropout": 0.2,
"hidden_units": 0, "loss": ..., "metrics": [...]}`` (``hidden_units``: width of a ReLU
layer before the output, 0 for none; the old key ``"hidden"`` is a deprecated alias).
The model is compiled with `compiling.default_optimizer` (Adam, AdamW with
``weight_decay``, a discriminative optimizer with ``backbone_learning_rate``), as every
builder.

Examples:
```python
import numpy as np
from keras_transfer._backend import keras
from keras_transfer.multitask import build_multitask

backbone = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
model = build_multitask(
    backbone, {"digit": "classification:10", "size": "regression"},
    loss_weights={"digit": 1.0, "size": 0.5},
)
x = np.zeros((4, 8, 8, 3), "float32")
model.fit(x, {"digit": np.arange(4), "size": np.ones(4)}, epochs=1, verbose=0)
assert set(model.predict(x, verbose=0)) == {"digit", "size"}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keras_transfer._backend import keras
from keras_transfer._deprecation import rename_config_keys, warn_renamed

__all__ = ["MultiTaskConfig", "build_multitask", "parse_head_spec"]

_TYPES = ("classification", "multilabel", "regression")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Renamed head spec keys (old -> new), read until keras_transfer 0.3.
_RENAMED_KEYS = {"hidden": "hidden_units"}


@dataclass
class MultiTaskConfig:
    """Settings of a multi-task model (CLI and config files)."""

    heads: dict = field(
        default_factory=dict,
        metadata={
            "help": "Task name -> head spec: 'classification:N', 'multilabel:N', "
            "'regression[:N]' or a dict with type, units, dropout, hidden_units, "
            "loss, metrics."
        },
    )
    loss_weights: dict = field(
        default_factory=dict,
        metadata={"help": "Task name -> weight of its loss (missing tasks: 1.0)."},
    )
    unfreeze_depth: Any = field(
        default=0, metadata={"help": "Backbone layers to train: 0, N or 'all'."}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})

    def __post_init__(self) -> None:
        # A config file written before the rename may hold "hidden": read it
        # silently (a saved file, not the user's code), as `from_config` does.
        self.heads = {
            task: rename_config_keys(spec, _RENAMED_KEYS, f"head {task!r}")
            if isinstance(spec, dict)
            else spec
            for task, spec in self.heads.items()
        }


def parse_head_spec(name: str, spec: Any) -> dict:
    """Normalises a head spec to a dict: type, units, dropout, hidden_units, loss, metrics.

    Args:
        name: str. The task name (letters, digits and underscores).
        spec: str or dict. See the module docstring. A dict's old key ``"hidden"``
            is read as ``"hidden_units"`` with a `DeprecationWarning`.

    Returns:
        The spec as a dict with every key set.

    Raises:
        ValueError: for an invalid task name, type or unit count, or a dict with
            both ``"hidden"`` and ``"hidden_units"``.

    Examples:
    ```python
    from keras_transfer.multitask import parse_head_spec
    spec = parse_head_spec("digit", {"type": "classification", "units": 10,
                                     "hidden_units": 64})
    assert spec["hidden_units"] == 64 and spec["loss"].startswith("sparse")
    ```
    """
    return _parse_head_spec(name, spec, stacklevel=4)


def _parse_head_spec(name: str, spec: Any, stacklevel: int) -> dict:
    # stacklevel: the deprecation warning points at the user's line.
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "Expected task names made of letters, digits and underscores. "
            f"Received: {name!r}"
        )
    if isinstance(spec, str):
        kind, _, units = spec.partition(":")
        spec = {"type": kind}
        if units:
            if not units.isdigit():
                raise ValueError(
                    f"Expected '<type>:<int>' for head {name!r}. Received: {spec!r}"
                )
            spec["units"] = int(units)
    if not isinstance(spec, dict):
        raise ValueError(
            f"Expected a string or dict head spec for {name!r}. Received: {spec!r}"
        )
    for old, new in _RENAMED_KEYS.items():
        if old in spec:
            where = f"head spec {name!r}"
            spec = rename_config_keys(spec, {old: new}, where)  # both: ValueError
            warn_renamed(where, old, new, stacklevel=stacklevel)
    out = {"dropout": 0.0, "hidden_units": 0, "loss": None, "metrics": None, **spec}
    if out.get("type") not in _TYPES:
        raise ValueError(
            f"Expected head type in {_TYPES} for {name!r}. Received: {out.get('type')!r}"
        )
    out.setdefault("units", 1 if out["type"] == "regression" else None)
    minimum = 2 if out["type"] == "classification" else 1
    if not isinstance(out["units"], int) or out["units"] < minimum:
        raise ValueError(
            f"Expected head {name!r} of type {out['type']!r} to have an int number of "
            f"units >= {minimum}, e.g. '{out['type']}:{max(minimum, 3)}'. "
            f"Received: units={out['units']!r}"
        )
    if out["loss"] is None:
        out["loss"] = {
            "classification": "sparse_categorical_crossentropy",
            "multilabel": "binary_crossentropy",
            "regression": "mse",
        }[out["type"]]
    if out["metrics"] is None:
        out["metrics"] = {
            "classification": ["accuracy"],
            "multilabel": [keras.metrics.BinaryAccuracy(name="accuracy")],
            "regression": ["mae"],
        }[out["type"]]
    return out


def _head(features: Any, name: str, spec: dict) -> Any:
    x = features
    if spec["hidden_units"]:
        # The layer keeps its name: .keras files store weights under it.
        x = keras.layers.Dense(spec["hidden_units"], "relu", name=f"{name}_hidden")(x)
    if spec["dropout"]:
        x = keras.layers.Dropout(spec["dropout"], name=f"{name}_dropout")(x)
    activation = {
        "classification": "softmax",
        "multilabel": "sigmoid",
        "regression": None,
    }[spec["type"]]
    return keras.layers.Dense(
        spec["units"], activation=activation, dtype="float32", name=name
    )(x)


def build_multitask(
    backbone: Any,
    heads: dict,
    *,
    loss_weights: dict | None = None,
    unfreeze_depth: int | str = 0,
    train_batchnorm: bool | str = "auto",
    batchnorm_momentum: float | str | None = "auto",
    input_shape: tuple | None = None,
    pooling: str = "avg",
    learning_rate: float = 1e-3,
    backbone_learning_rate: float | None = None,
    weight_decay: float | None = None,
    include_preprocessing: bool = True,
    compile: bool = True,
    strategy: Any = None,
    name: str | None = None,
    **backbone_kwargs: Any,
) -> keras.Model:
    """Builds a shared-backbone model with one named output per task.

    Args:
        backbone: A backbone spec string, ``LoadedBackbone`` or keras model (see
            ``load_backbone``).
        heads: dict. Task name -> head spec (see the module docstring).
        loss_weights: dict or None. Task name -> loss weight (missing: 1.0).
        unfreeze_depth: int or str. Backbone trainability: 0, N or ``"all"``.
            Defaults to 0 (frozen backbone).
        train_batchnorm: bool or `"auto"`. Let BatchNormalization train when
            unfrozen: `"auto"` trains those whose statistics have never been trained (a
            backbone without pretrained weights) and keeps pretrained ones frozen (the
            keras.io rule), as `set_trainable`. Defaults to `"auto"`.
        batchnorm_momentum: `"auto"`, float in [0, 1) or None, as in
            `build_classifier`: with `"auto"` BatchNorm layers whose statistics were
            never trained use momentum 0.9. Defaults to `"auto"`.
        input_shape: tuple or None. Needed when the backbone declares none.
        pooling: str. ``"avg"`` or ``"max"``. Defaults to ``"avg"``.
        learning_rate: float. Defaults to 1e-3.
        backbone_learning_rate: float or None. A separate (usually lower) learning
            rate for the shared backbone (discriminative fine-tuning, see
            `compile_model`). Defaults to None (the backbone uses `learning_rate`).
        weight_decay: float or None. Use AdamW with this decay.
        include_preprocessing: bool. Put the backbone's preprocessor in the model.
        compile: bool. Compile with per-task losses and metrics and
            `compiling.default_optimizer`. Defaults to True.
        strategy: A `tf.distribute.Strategy`, a strategy name (see
            `get_strategy`), or None. The model is built and compiled inside its
            scope. Defaults to None.
        name: str or None. Model name.
        **backbone_kwargs: passed to ``load_backbone``.

    Returns:
        A ``keras.Model`` with a dict output keyed by task name; its attribute
        ``backbone`` is the shared backbone layer (see ``builders``).

    Raises:
        ValueError: for empty heads, invalid specs or unknown loss_weights keys.
    """
    from keras_transfer.backbones import load_backbone
    from keras_transfer.builders import inputs_and_features
    from keras_transfer.compiling import default_optimizer
    from keras_transfer.distribute import maybe_distribute
    from keras_transfer.freezing import set_trainable
    from keras_transfer.heads import pool_features
    from keras_transfer.normalization import (
        check_batchnorm_momentum,
        set_batchnorm_momentum,
    )

    if not isinstance(heads, dict) or not heads:
        raise ValueError(
            f"Expected heads to be a non-empty dict of name -> spec. Received: {heads!r}"
        )
    specs = {}
    for task, spec in heads.items():  # a loop: a comprehension adds a frame
        specs[task] = _parse_head_spec(task, spec, stacklevel=4)
    loss_weights = dict(loss_weights or {})
    unknown = sorted(set(loss_weights) - set(specs))
    if unknown:
        raise ValueError(
            f"loss_weights names unknown tasks {unknown}. Tasks: {sorted(specs)}"
        )
    check_batchnorm_momentum(batchnorm_momentum)
    with maybe_distribute(strategy):
        bb = load_backbone(backbone, **backbone_kwargs)
        set_batchnorm_momentum(
            bb.model, batchnorm_momentum, label=f"backbone {bb.spec!r}", verbose=True
        )
        inputs, features = inputs_and_features(bb, input_shape, include_preprocessing)
        pooled = pool_features(features, pooling)
        outputs = {task: _head(pooled, task, spec) for task, spec in specs.items()}
        model = keras.Model(inputs, outputs, name=name or "multitask")
        model.backbone = bb.model  # explicit (find_backbone, set_trainable, fine_tune)
        set_trainable(
            model, unfreeze_depth, train_batchnorm=train_batchnorm, recompile=False
        )
        if compile:
            # Per-task losses are not a `compile_model` recipe: compile with its
            # optimizer; `recompile` then follows the model's compile config.
            model.compile(
                optimizer=default_optimizer(
                    model,
                    learning_rate,
                    backbone_learning_rate=backbone_learning_rate,
                    weight_decay=weight_decay,
                ),
                loss={task: spec["loss"] for task, spec in specs.items()},
                loss_weights={
                    task: float(loss_weights.get(task, 1.0)) for task in specs
                },
                metrics={task: spec["metrics"] for task, spec in specs.items()},
            )
    return model
