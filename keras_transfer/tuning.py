"""KerasTuner search over learning rate, unfreeze depth, dropout and head width.

`TransferHyperModel` builds a fresh keras-transfer model per trial (a classifier from
`build_classifier`, or a `DANN`); `make_tuner` is a thin factory over KerasTuner's
tuners; `search_summary`/`format_summary` tabulate the trials; `retrain_best`
retrains the best configuration on train+validation and can export it.

Every hyperparameter argument accepts: None (the default search range), a scalar
(fixed: ``hp.Fixed``), a tuple ``(min, max)`` or ``(min, max, step)`` (a range), or a
list (``hp.Choice``).
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import os
from collections.abc import Callable
from typing import Any

import keras_tuner as kt

from keras_transfer._backend import keras, tf
from keras_transfer.features import check_cache_features
from keras_transfer.finetune import build_optimizer

TUNERS = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
    "grid": kt.GridSearch,
}
#: Objectives whose direction KerasTuner cannot guess.
KNOWN_OBJECTIVES = {"dev_risk": "min", "val_source_accuracy": "max"}

__all__ = [
    "TUNERS",
    "TransferHyperModel",
    "format_summary",
    "make_tuner",
    "retrain_best",
    "search_summary",
]

_HP = Any  # a scalar, tuple range, list of choices or None


def _define(hp, name: str, spec: _HP, default: _HP, *, integer=False, log=False):
    """Declares one hyperparameter from a user spec (see the module docstring)."""
    spec = default if spec is None else spec
    if isinstance(spec, list):
        return hp.Choice(name, spec)
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not spec[0] < spec[1]:
            raise ValueError(
                f"Expected {name} to be a scalar, a list of choices or a tuple "
                f"(min, max[, step]) with min < max. Received: {name}={spec!r}"
            )
        step = spec[2] if len(spec) == 3 else None
        sampling = "log" if log else "linear"
        if integer:
            return hp.Int(name, int(spec[0]), int(spec[1]), step=step or 1)
        return hp.Float(
            name, float(spec[0]), float(spec[1]), step=step, sampling=sampling
        )
    return hp.Fixed(name, spec)


class TransferHyperModel(kt.HyperModel):
    """Searches learning rate, unfreeze depth, dropout, head width (and DANN's γ/λ_max).

    Each trial loads or makes a fresh backbone (KerasTuner clears the Keras session
    before each build), so memory stays flat over many trials.

    Args:
        backbone: str, callable or keras.Model. A spec for `load_backbone` (loaded
            afresh per trial), a zero-argument function returning a new backbone, or
            a model (cloned with its weights per trial).
        num_classes: int. Number of classes.
        method: str or None. None/"classifier": `build_classifier`; "dann": a `DANN`
            trained with a `DomainLambdaScheduler`. Defaults to None.
        learning_rate: hp spec. Defaults to ``(1e-4, 1e-2)``, log scale.
        unfreeze_depth: hp spec. Defaults to ``(0, depth)``, the backbone's number
            of weight-holding units (`keras_transfer.freezing.trainable_units`).
        dropout: hp spec. Head dropout (DANN: discriminator dropout). Defaults to
            ``(0.0, 0.5, 0.1)``.
        head_units: hp spec or None. Width of the MLP head (DANN: discriminator);
            fixed None gives a linear head. Defaults to ``[32, 64, 128]``.
        gamma: hp spec. DANN λ-schedule steepness. Defaults to ``(5.0, 15.0)``.
        lambda_max: hp spec. DANN final λ. Defaults to ``(0.1, 1.0)``.
        input_shape: tuple or None. Input shape when the backbone has none.
        dev_data: tuple ``(source_validation, target_x)`` or None. Adds a
            `DEVCallback` so trials log ``dev_risk`` (unsupervised DA objective).
        build_kwargs: dict or None. More `build_classifier`/`DANN` arguments;
            those neither takes (e.g. ``weights``) go to the backbone loader, like
            `backbone_kwargs`.
        cache_features: bool or str. Trials whose `unfreeze_depth` is 0 train the
            head on cached backbone features (see `fine_tune(cache_features=)`):
            "auto" when exact, True (or raise ValueError saying why not), False
            never. One cache serves every depth-0 trial whose feature extractor
            has the same weights (a spec string with pretrained weights, a model
            cloned per trial); its log line is "[tuner] head phase on cached
            features: N examples, D dims". Defaults to "auto".
        cache_dir: str or None. Where features over `features.MEMORY_LIMIT`
            go (see `fine_tune(cache_dir=)`). Defaults to None.
        backbone_kwargs: dict or None. Arguments of `load_backbone` for a spec
            string (e.g. ``{"weights": None}`` for a keras.applications model,
            offline). ``input_shape`` is added for keras.applications, TF-Hub and
            SavedModel specs when given.
        **kwargs: `keras_tuner.HyperModel` arguments (``name``, ``tunable``); any
            other keyword (e.g. ``weights=None``) is a backbone argument.

    Raises:
        ValueError: For an unknown ``method`` or a bad hp spec.

    Examples:
    ```python
    import tempfile

    import keras
    import numpy as np

    from keras_transfer.tuning import (
        TransferHyperModel, format_summary, make_tuner, search_summary)


    def my_backbone_fn():  # a new backbone per trial
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        h = keras.layers.Conv2D(4, 3, activation="relu")(h)
        return keras.Model(inputs, h, name="tiny")


    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 3), "float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")

    hypermodel = TransferHyperModel(my_backbone_fn, num_classes=2,
                                    unfreeze_depth=0, dropout=0.2)  # fixed ones
    from_model = TransferHyperModel(my_backbone_fn(), 2)  # cloned per trial
    offline = TransferHyperModel("keras_applications:MobileNetV3Small", 10,
                                 weights=None, input_shape=(32, 32, 3))
    tuner = make_tuner("random", hypermodel, "val_accuracy", max_trials=1,
                       directory=tempfile.mkdtemp())
    tuner.search(x[:24], y[:24], validation_data=(x[24:], y[24:]), epochs=1,
                 verbose=0)
    print(format_summary(search_summary(tuner)))
    assert len(search_summary(tuner)) == 1
    ```
    """

    def __init__(
        self,
        backbone: str | Callable[[], Any] | Any,
        num_classes: int,
        *,
        method: str | None = None,
        learning_rate: _HP = None,
        unfreeze_depth: _HP = None,
        dropout: _HP = None,
        head_units: _HP = ...,
        gamma: _HP = None,
        lambda_max: _HP = None,
        input_shape: tuple | None = None,
        dev_data: tuple[Any, Any] | None = None,
        build_kwargs: dict | None = None,
        backbone_kwargs: dict | None = None,
        cache_features: bool | str = "auto",
        cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        tuner_args = {k: kwargs.pop(k) for k in ("name", "tunable") if k in kwargs}
        super().__init__(**tuner_args)
        if method not in (None, "classifier", "dann"):
            raise ValueError(
                "Expected method to be None, 'classifier' or 'dann'. "
                f"Received: method={method!r}"
            )
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"Expected num_classes to be an int >= 2. Received: {num_classes!r}"
            )
        self.backbone = backbone
        self.num_classes = num_classes
        self.method = "dann" if method == "dann" else "classifier"
        self.specs = {
            "learning_rate": learning_rate,
            "unfreeze_depth": unfreeze_depth,
            "dropout": dropout,
            "head_units": [32, 64, 128] if head_units is ... else head_units,
            "gamma": gamma,
            "lambda_max": lambda_max,
        }
        self.input_shape = input_shape
        self.dev_data = dev_data
        builder = self._builder()
        accepted = {
            name
            for name, p in inspect.signature(builder).parameters.items()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        }
        build_kwargs = dict(build_kwargs or {})
        self.build_kwargs = {k: v for k, v in build_kwargs.items() if k in accepted}
        self.backbone_kwargs = {
            **{k: v for k, v in build_kwargs.items() if k not in accepted},
            **dict(backbone_kwargs or {}),
            **kwargs,
        }
        if self.backbone_kwargs and not isinstance(backbone, str):
            raise ValueError(
                "Backbone arguments are used only when backbone is a spec string; "
                "pass them to your own backbone function instead. Received: "
                f"backbone={backbone!r}, backbone kwargs "
                f"{sorted(self.backbone_kwargs)}"
            )
        self.builds = 0  # models built by this hypermodel (fresh backbones made)
        self._depth: int | None = None
        self.cache_features = check_cache_features(cache_features)
        self.cache_dir = cache_dir
        self.feature_passes = 0  # backbone passes made to cache features
        self._features: tuple | None = None  # (key, CachedFeatures)

    def _builder(self) -> Callable:
        if self.method == "dann":
            from keras_transfer.adaptation import DANN

            return DANN.__init__
        from keras_transfer.builders import build_classifier

        return build_classifier

    # -------------------------------------------------------------- backbone
    def new_backbone(self) -> Any:
        """A fresh backbone for one trial (spec string, new model or a clone)."""
        if isinstance(self.backbone, str):
            from keras_transfer.backbones import load_backbone

            kwargs = dict(self.backbone_kwargs)
            schemes = ("keras_applications:", "tfhub:", "saved_model:")
            if self.input_shape is not None and self.backbone.startswith(schemes):
                kwargs.setdefault("input_shape", tuple(self.input_shape))
            return load_backbone(self.backbone, **kwargs)
        if isinstance(self.backbone, keras.layers.Layer):
            clone = keras.models.clone_model(self.backbone)
            clone.set_weights(self.backbone.get_weights())
            return clone
        if callable(self.backbone):
            return self.backbone()
        raise ValueError(
            "Expected backbone to be a spec string, a function returning a backbone, "
            f"or a keras Model. Received: backbone={self.backbone!r}"
        )

    @property
    def depth(self) -> int:
        """Number of weight-holding units of the backbone (unfreeze_depth's max)."""
        if self._depth is None:
            from keras_transfer.freezing import trainable_units

            bb = self.new_backbone()
            self._depth = len(trainable_units(getattr(bb, "model", bb)))
            del bb
            gc.collect()
        return self._depth

    # ------------------------------------------------------------ hyperparams
    def declare(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """Declares this model's hyperparameters on ``hp`` and returns their values."""
        s = self.specs
        values = {
            "learning_rate": _define(
                hp, "learning_rate", s["learning_rate"], (1e-4, 1e-2), log=True
            ),
            "unfreeze_depth": _define(
                hp,
                "unfreeze_depth",
                s["unfreeze_depth"],
                None if s["unfreeze_depth"] is not None else (0, max(self.depth, 1)),
                integer=True,
            ),
            "dropout": _define(hp, "dropout", s["dropout"], (0.0, 0.5, 0.1)),
            "head_units": None
            if s["head_units"] is None
            else _define(hp, "head_units", s["head_units"], None, integer=True),
        }
        if self.method == "dann":
            values["gamma"] = _define(hp, "gamma", s["gamma"], (5.0, 15.0))
            values["lambda_max"] = _define(
                hp, "lambda_max", s["lambda_max"], (0.1, 1.0)
            )
        depth = values["unfreeze_depth"]
        if self._depth is not None and isinstance(depth, int) and depth > self._depth:
            values["unfreeze_depth"] = "all"  # (0, 1) range on a depth-0 backbone
        return values

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Builds and compiles a fresh model for the trial's hyperparameters."""
        v = self.declare(hp)
        self.builds += 1
        backbone = self.new_backbone()
        if self.method == "dann":
            from keras_transfer.adaptation import DANN

            model = DANN(
                backbone,
                self.num_classes,
                discriminator_units=(v["head_units"] or 64,),
                discriminator_dropout=v["dropout"],
                unfreeze_depth=v["unfreeze_depth"],
                input_shape=self.input_shape,
                **self.build_kwargs,
            )
            model.compile(optimizer=keras.optimizers.Adam(v["learning_rate"]))
            if model.built:
                build_optimizer(model)
            return model
        from keras_transfer.builders import build_classifier

        model = build_classifier(
            backbone,
            self.num_classes,
            unfreeze_depth=v["unfreeze_depth"],
            dropout=v["dropout"],
            head="linear" if v["head_units"] is None else "mlp",
            head_units=v["head_units"] or 256,
            learning_rate=v["learning_rate"],
            input_shape=self.input_shape,
            **self.build_kwargs,
        )
        # With its variables made now, the tuner's checkpoints (reloaded by
        # get_best_models) bring the optimizer state back instead of Keras skipping
        # it with a warning.
        build_optimizer(model)
        return model

    def callbacks(self, hp: kt.HyperParameters, *, search: bool = True) -> list:
        """Callbacks a trial needs: DANN's λ schedule; DEV risk while searching."""
        out: list = []
        if search and self.dev_data is not None:
            from keras_transfer.adaptation import DEVCallback

            out.append(DEVCallback(self.dev_data[0], self.dev_data[1]))
        if self.method == "dann":
            from keras_transfer.adaptation import DomainLambdaScheduler

            values = hp.values
            out.append(
                DomainLambdaScheduler(
                    gamma=values.get("gamma", 10.0),
                    max_value=values.get("lambda_max", 1.0),
                )
            )
        return out

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        """``model.fit`` with this model's callbacks put before the tuner's."""
        kwargs["callbacks"] = self.callbacks(hp) + list(kwargs.get("callbacks") or [])
        x = args[0] if args else kwargs.get("x")
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # else Keras warns it is ignored
        history = self._fit_cached(hp, model, args, kwargs)
        if history is not None:
            return history
        return model.fit(*args, **kwargs)

    def _fit_cached(self, hp: Any, model: keras.Model, args: tuple, kwargs: dict):
        """Fits a depth-0 trial's head on cached features; None: fit as usual."""
        if (
            self.method != "classifier"
            or self.cache_features is False
            or hp.values.get("unfreeze_depth") != 0
        ):
            return None
        from keras_transfer import features

        names = ("x", "y", "batch_size", "epochs", "verbose", "callbacks")
        fit = {**dict(zip(names, args)), **kwargs}
        extra = sorted(set(fit) - set(_CACHEABLE_FIT_ARGS))
        x, y, weights = fit.get("x"), fit.get("y"), fit.get("sample_weight")
        train = x if y is None else ((x, y) if weights is None else (x, y, weights))
        validation = fit.get("validation_data")
        try:
            extractor, head = features.split_model(model)
            reasons = features.caching_blockers(model, extractor)
        except ValueError as err:
            reasons = [str(err)]
        reasons += [f"fit argument {name!r}" for name in extra]
        reasons += features.data_blockers(train)
        if validation is not None:
            reasons += features.data_blockers(validation)
        if reasons:
            text = "; ".join(reasons)
            if self.cache_features is True:
                raise ValueError(
                    "cache_features=True, but this depth-0 trial cannot train on "
                    f"cached features exactly: {text}. Pass cache_features='auto' "
                    "or False to TransferHyperModel."
                )
            features.logger.info("[tuner] head phase runs uncached: %s", text)
            return None
        batch_size = fit.get("batch_size") or 32
        key = (id(x), id(y), id(weights), id(validation), batch_size)
        key += (_weights_digest(extractor),)
        if self._features is None or self._features[0] != key:
            if self._features is not None:
                self._features[1].close()
            self._features = None
            cached = features.cache_features(
                extractor,
                train,
                validation,
                batch_size=batch_size,
                cache_dir=self.cache_dir,
                required=self.cache_features is True,
            )
            if cached is None:
                features.logger.info(
                    "[tuner] head phase runs uncached: features over MEMORY_LIMIT "
                    "and no cache_dir"
                )
                return None
            self.feature_passes += 1
            self._features = (key, cached)
        cached = self._features[1]
        if "shuffle" in fit and not isinstance(cached.fit_kwargs["x"], tf.data.Dataset):
            cached = dataclasses.replace(
                cached, fit_kwargs={**cached.fit_kwargs, "shuffle": fit["shuffle"]}
            )
        verbose = fit.get("verbose", "auto")
        features.log_cached("tuner", cached, verbose)
        features.compile_head(model, head)
        return features.fit_head(
            model,
            head,
            cached,
            epochs=fit.get("epochs", 1),
            initial_epoch=fit.get("initial_epoch", 0),
            callbacks=fit.get("callbacks"),
            verbose=verbose,
        )


_CACHEABLE_FIT_ARGS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "epochs",
    "initial_epoch",
    "verbose",
    "callbacks",
    "validation_data",
    "shuffle",
)


def _weights_digest(model: keras.Model) -> str:
    """A digest of `model`'s layer classes, weights and output shape."""
    import hashlib

    import numpy as np

    digest = hashlib.sha1(str(model.output.shape).encode())
    for layer in model._flatten_layers():
        digest.update(type(layer).__name__.encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    objective: str | kt.Objective = "val_accuracy",
    *,
    max_trials: int = 10,
    directory: str | os.PathLike = "runs/tuning",
    project_name: str = "keras_transfer",
    distribution_strategy: Any = None,
    seed: int | None = None,
    overwrite: bool = False,
    on_trial_end: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> kt.Tuner:
    """Makes a KerasTuner tuner; a thin factory.

    An existing ``directory/project_name`` is resumed (finished trials are skipped)
    unless ``overwrite=True``.

    Args:
        kind: str. "random", "bayesian", "hyperband" or "grid".
        hypermodel: keras_tuner.HyperModel (e.g. `TransferHyperModel`).
        objective: str or keras_tuner.Objective. ``"dev_risk"`` (unsupervised DA
            criterion, minimised) is understood. Defaults to "val_accuracy".
        max_trials: int. Trial budget (Hyperband: ignored, set ``max_epochs``).
            Defaults to 10.
        directory: path. Where trials are stored. Defaults to "runs/tuning".
        project_name: str. Sub-directory name. Defaults to "keras_transfer".
        distribution_strategy: strategy, strategy name or None. Passed to the tuner
            (each trial builds inside its scope). Defaults to None.
        seed: int or None. Tuner seed. Defaults to None.
        overwrite: bool. Start afresh instead of resuming. Defaults to False.
        on_trial_end: callable or None. Called with each finished
            `keras_tuner.engine.trial.Trial` (its ``trial_id``, ``hyperparameters``
            and ``score`` set), e.g. to print one line per trial. Defaults to None.
        **kwargs: Other arguments of the tuner class (``max_epochs``, ``factor``,
            ``num_initial_points``, ``executions_per_trial``...).

    Returns:
        A `keras_tuner.Tuner`.

    Raises:
        ValueError: For an unknown ``kind``.
    """
    if kind not in TUNERS:
        raise ValueError(
            f"Expected kind to be one of {sorted(TUNERS)}. Received: kind={kind!r}"
        )
    if isinstance(objective, str) and objective in KNOWN_OBJECTIVES:
        objective = kt.Objective(objective, KNOWN_OBJECTIVES[objective])
    if distribution_strategy is not None:
        from keras_transfer.distribute import get_strategy

        distribution_strategy = get_strategy(distribution_strategy)
    if kind != "hyperband":
        kwargs["max_trials"] = max_trials
    else:
        kwargs.setdefault("max_epochs", 3)
    cls = TUNERS[kind]
    if on_trial_end is not None:
        cls = _reporting(cls, on_trial_end)
    return cls(
        hypermodel=hypermodel,
        objective=objective,
        directory=os.fspath(directory),
        project_name=project_name,
        distribution_strategy=distribution_strategy,
        seed=seed,
        overwrite=overwrite,
        **kwargs,
    )


def _reporting(cls: type, on_trial_end: Callable[[Any], None]) -> type:
    """`cls` calling `on_trial_end(trial)` once the oracle has scored each trial."""

    class Reporting(cls):
        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            # The oracle scores its own copy of the trial.
            on_trial_end(self.oracle.trials.get(trial.trial_id, trial))

    Reporting.__name__ = Reporting.__qualname__ = cls.__name__
    return Reporting


def search_summary(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """One row per finished trial, best first: trial id, hyperparameters, score."""
    trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
    direction = tuner.oracle.objective.direction
    trials.sort(key=lambda t: t.score, reverse=direction == "max")
    return [
        {"trial": t.trial_id, **t.hyperparameters.values, "score": t.score}
        for t in trials
    ]


def format_summary(rows: list[dict[str, Any]]) -> str:
    """Formats `search_summary` rows as a plain-text table."""
    if not rows:
        return "(no finished trials)"
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _merge(train: Any, validation: Any) -> Any:
    if validation is None:
        return train
    if isinstance(train, tf.data.Dataset):
        return train.concatenate(validation)
    import numpy as np

    return tuple(np.concatenate([a, b]) for a, b in zip(train, validation))


def retrain_best(
    tuner: kt.Tuner,
    train: Any,
    validation: Any = None,
    *,
    epochs: int = 1,
    export_dir: str | os.PathLike | None = None,
    export_kwargs: dict | None = None,
    **fit_kwargs: Any,
) -> tuple[keras.Model, Any]:
    """Retrains the best configuration on train+validation; optionally exports it.

    Args:
        tuner: a tuner after ``search``.
        train: tf.data.Dataset or tuple ``(x, y)``.
        validation: same kind as ``train`` or None; appended to the training data.
        epochs: int. Training epochs. Defaults to 1.
        export_dir: path or None. When given, the model goes to
            `keras_transfer.export.export_saved_model` (verified). Defaults to None.
        export_kwargs: dict or None. More `export_saved_model` arguments.
        **fit_kwargs: more ``model.fit`` arguments.

    Returns:
        ``(model, report)``: the retrained model and the `ExportReport` (or None).
    """
    from keras_transfer.distribute import maybe_distribute

    hp = tuner.get_best_hyperparameters(1)[0]
    hypermodel = tuner.hypermodel
    keras.backend.clear_session()
    with maybe_distribute(tuner.distribution_strategy):
        model = hypermodel.build(hp)
    data = _merge(train, validation)
    callbacks = list(fit_kwargs.pop("callbacks", []) or [])
    if isinstance(hypermodel, TransferHyperModel):
        callbacks = hypermodel.callbacks(hp, search=False) + callbacks
    if isinstance(data, tuple):
        fit_kwargs.setdefault("x", data[0])
        fit_kwargs.setdefault("y", data[1])
    else:
        fit_kwargs.setdefault("x", data)
        if isinstance(data, tf.data.Dataset):
            fit_kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
    model.fit(epochs=epochs, callbacks=callbacks, **fit_kwargs)
    report = None
    if export_dir is not None:
        from keras_transfer.export import export_saved_model

        report = export_saved_model(model, export_dir, **(export_kwargs or {}))
    return model, report
