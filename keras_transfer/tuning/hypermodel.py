"""`TransferHyperModel`: one fresh keras-transfer model per KerasTuner trial.

Every hyperparameter argument accepts: None (the default search range), a scalar
(fixed: ``hp.Fixed``), a tuple ``(min, max)`` or ``(min, max, step)`` (a range), or a
list (``hp.Choice``).
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from typing import Any

import keras_tuner as kt

from keras_transfer._backend import keras, tf
from keras_transfer.features import check_cache_features
from keras_transfer.finetune import build_optimizer
from keras_transfer.tuning.cached import check_trial_data, fit_cached
from keras_transfer.tuning.repeats import said_once
from keras_transfer.tuning.specs import HP, check_width, define, widths_spec

__all__ = ["TransferHyperModel"]


class TransferHyperModel(kt.HyperModel):
    """Searches learning rate, unfreeze depth, dropout, an MLP width (DANN: γ, λ_max).

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
        head_units: hp spec or None. Width of the MLP head of `build_classifier`;
            None gives a linear head. Defaults to ``[32, 64, 128]``. With
            ``method="dann"`` (whose label head is linear) it is a deprecated alias
            of ``discriminator_units`` (until keras_transfer 0.3).
        discriminator_units: hp spec or None. Width of DANN's one hidden
            discriminator layer (``DANN(discriminator_units=(width,))``); None
            keeps DANN's default ``(64,)``. Only with ``method="dann"``. Defaults to
            ``[32, 64, 128]``.
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
        learning_rate: HP = None,
        unfreeze_depth: HP = None,
        dropout: HP = None,
        head_units: HP = ...,
        discriminator_units: HP = ...,
        gamma: HP = None,
        lambda_max: HP = None,
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
        widths = widths_spec(self.method, head_units, discriminator_units)
        for name, spec in widths.items():
            check_width(name, spec)
        self.specs = {
            "learning_rate": learning_rate,
            "unfreeze_depth": unfreeze_depth,
            "dropout": dropout,
            **widths,
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
            "learning_rate": define(
                hp, "learning_rate", s["learning_rate"], (1e-4, 1e-2), log=True
            ),
            "unfreeze_depth": define(
                hp,
                "unfreeze_depth",
                s["unfreeze_depth"],
                None if s["unfreeze_depth"] is not None else (0, max(self.depth, 1)),
                integer=True,
            ),
            "dropout": define(hp, "dropout", s["dropout"], (0.0, 0.5, 0.1)),
        }
        width = "discriminator_units" if self.method == "dann" else "head_units"
        values[width] = (
            None
            if s[width] is None
            else define(hp, width, s[width], None, integer=True)
        )
        if self.method == "dann":
            values["gamma"] = define(hp, "gamma", s["gamma"], (5.0, 15.0))
            values["lambda_max"] = define(hp, "lambda_max", s["lambda_max"], (0.1, 1.0))
        depth = values["unfreeze_depth"]
        if self._depth is not None and isinstance(depth, int) and depth > self._depth:
            values["unfreeze_depth"] = "all"  # (0, 1) range on a depth-0 backbone
        return values

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Builds and compiles a fresh model for the trial's hyperparameters.

        What the builders say about the backbone (warnings, log and ``[build]``
        lines) comes out on the first trial that says it, not on every trial
        (`keras_transfer.tuning.repeats.said_once`).
        """
        if not hasattr(self, "_said"):
            self._said: set = set()
        with said_once(self._said):
            return self._build_model(hp)

    def _build_model(self, hp: kt.HyperParameters) -> keras.Model:
        v = self.declare(hp)
        self.builds += 1
        backbone = self.new_backbone()
        if self.method == "dann":
            from keras_transfer.adaptation import DANN

            model = DANN(
                backbone,
                self.num_classes,
                discriminator_units=(v["discriminator_units"] or 64,),
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
                    lambda_max=values.get("lambda_max", 1.0),
                )
            )
        return out

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        """``model.fit`` with this model's callbacks put before the tuner's."""
        kwargs["callbacks"] = self.callbacks(hp) + list(kwargs.get("callbacks") or [])
        check_trial_data(model, args, kwargs)
        x = args[0] if args else kwargs.get("x")
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # else Keras warns it is ignored
        history = fit_cached(self, hp, model, args, kwargs)
        if history is not None:
            return history
        return model.fit(*args, **kwargs)
