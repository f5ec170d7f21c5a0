"""One model, one training step, for every domain adaptation method.

(Over 400 lines on purpose: the one training step and what configures it -- bottleneck,
strong view, DANN's defaults -- stay next to each other.)

`DomainAdaptationModel` trains with plain ``model.fit`` on batches made by
`keras_transfer.data.domain_pairs`: ``({"source": x_s, "target": x_t}, y_s)``. The
encoder runs once on the joint batch; the label head sees the source half; the
alignment method (DANN, CDAN, DeepCORAL, MMD, or none) adds its loss. Logs come from
metric trackers, and the loss used for gradients is divided by the number of replicas,
so logs and updates are the same with or without a `tf.distribute` strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer._deprecation import rename_config_keys, renamed_arguments
from keras_transfer.adaptation.encoders import make_encoder
from keras_transfer.adaptation.methods import (
    DomainAdversarial,
    get_alignment_method,
)
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.normalization import batchnorm_layers

ops = keras.ops
_TRAIN_KEYS = (
    "loss",
    "source_loss",
    "source_accuracy",
    "domain_loss",
    "domain_accuracy",
    "pseudo_label_rate",
)


def _as_float32(features):
    """Features of a mixed-precision encoder (bfloat16/float16) as float32, so the
    bottleneck, heads and alignment losses compute in float32."""
    dtype = keras.backend.standardize_dtype(features.dtype)
    return (
        ops.cast(features, "float32") if dtype in ("bfloat16", "float16") else features
    )


def _split_pair(x):
    if isinstance(x, dict) and set(x) == {"source", "target"}:
        return x["source"], x["target"]
    raise ValueError(
        "Expected training batches like ({'source': x_s, 'target': x_t}, y_s), as made "
        "by keras_transfer.data.domain_pairs(source_ds, target_ds, batch_size). "
        f"Received: x of type {type(x).__name__}"
        + (f" with keys {sorted(x)}" if isinstance(x, dict) else "")
    )


@keras.saving.register_keras_serializable(package="keras_transfer")
class DomainAdaptationModel(keras.Model):
    """Encoder + label head (+ an alignment method), trained with ``model.fit``.

    Args:
        backbone: keras.Model, keras Layer, `LoadedBackbone` or backbone spec string
            (the specs `build_classifier` accepts). Maps inputs to features; 4-D/3-D
            outputs are pooled into the model's ``encoder`` (see
            `keras_transfer.adaptation.make_encoder`). ``encoder=`` is a deprecated
            alias.
        num_classes: int or None. Number of classes of the default linear head.
            Required unless ``classifier`` is given.
        classifier: keras Layer or None. Maps features to class LOGITS.
            Defaults to ``Dense(num_classes)``.
        method: str, `AlignmentMethod` or None. ``"dann"``, ``"cdan"``, ``"coral"``,
            ``"mmd"``, ``"source_only"``/None, or an instance. Defaults to "dann".
        method_kwargs: dict or None. Constructor arguments when ``method`` is a name.
        input_shape: tuple or None. Input shape when the encoder has none.
        unfreeze_depth: int, "all", 0 or None. Encoder trainable policy
            (`keras_transfer.freezing.set_trainable`). None keeps it. Defaults to None.
        train_batchnorm: bool or `"auto"`. Let BatchNormalization train when
            unfrozen: `"auto"` trains those whose statistics have never been trained (a
            backbone without pretrained weights) and keeps pretrained ones frozen (the
            keras.io rule), as `set_trainable`. Defaults to `"auto"`.
        bottleneck_units: int or None. Width of a normalised bottleneck
            (``Dense → BatchNormalization → ReLU``) between the encoder and the heads,
            as in TLlib and the CDAN authors' code; alignment acts on its output.
            None feeds the encoder features to the heads directly. Defaults to None.
        bottleneck: keras Layer or None. A ready bottleneck layer (shared with
            another model); overrides ``bottleneck_units``. Defaults to None.
        strong_augmentation: keras Layer or None. The strong view of target images
            for methods with ``needs_strong_view`` (self-training); None uses
            `default_strong_augmentation` for image inputs and no strong view
            otherwise. Defaults to None.
        pooling: str. How the backbone's feature maps become the encoder's 2-D
            features: ``"avg"``, ``"max"`` or ``"flatten"`` (every position kept;
            `keras_transfer.heads.pool_features`). Part of the built encoder, so
            not a config entry of its own. Defaults to "avg".
        domain_batchnorm: bool. Domain-specific batch statistics while training
            (DSBN, Chang et al. 2019; AdaBN, Li et al. 2016, applied during training):
            the source and the target batch go through the network separately, so
            every BatchNormalization layer that trains normalises each domain with
            that domain's own batch statistics, and the moving statistics follow
            the source batches only (the target pass's update is undone). Predict
            on the target after re-estimating them there
            (`keras_transfer.adaptation.adapt_batchnorm`; `adapt` does it).
            False (the default) runs one joint source + target batch. Defaults to
            False.
        **kwargs: `keras.Model` keyword arguments (``name``...).

    Raises:
        ValueError: For a missing ``num_classes``/``classifier`` or a bad method.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import DomainAdaptationModel
    from keras_transfer.data.pairs import domain_pairs
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, 32)
    xt = rng.normal(size=(32, 4)).astype("float32") + 1.0
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    model = DomainAdaptationModel(backbone, num_classes=2, method="coral")
    model.compile(optimizer="adam")
    history = model.fit(domain_pairs((xs, ys), xt, batch_size=16), epochs=1, verbose=0)
    assert set(history.history) >= {"loss", "source_accuracy", "domain_loss"}
    ```
    """

    @renamed_arguments(encoder="backbone")
    def __init__(
        self,
        backbone: Any,
        num_classes: int | None = None,
        *,
        classifier: Any = None,
        method: Any = "dann",
        method_kwargs: dict | None = None,
        input_shape: Sequence[int] | None = None,
        unfreeze_depth: int | str | None = None,
        train_batchnorm: bool | str = "auto",
        bottleneck_units: int | None = None,
        bottleneck: Any = None,
        strong_augmentation: Any = None,
        pooling: str = "avg",
        domain_batchnorm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(domain_batchnorm, bool):
            raise ValueError(
                "Expected domain_batchnorm to be True or False. Received: "
                f"domain_batchnorm={domain_batchnorm!r}"
            )
        self.domain_batchnorm = domain_batchnorm
        if classifier is None:
            if not isinstance(num_classes, int) or num_classes < 2:
                raise ValueError(
                    "Expected num_classes to be an int >= 2 (or a classifier layer). "
                    f"Received: num_classes={num_classes!r}"
                )
            classifier = keras.layers.Dense(num_classes, name="classifier")
        self.num_classes = num_classes
        # The attribute stays `encoder` (backbone + pooling): Keras saves weights
        # under attribute names, so renaming it would break older .keras files.
        self.encoder = make_encoder(
            backbone,
            input_shape=None if input_shape is None else tuple(input_shape),
            unfreeze_depth=unfreeze_depth,
            train_batchnorm=train_batchnorm,
            pooling=pooling,
            # The encoder's BatchNorm momentum is `adapt`'s to set while it trains
            # (`adapt(batchnorm_momentum=)`), given back after: left as it is here.
            batchnorm_momentum=None,
        )
        self.classifier = classifier
        self.method = get_alignment_method(method, **(method_kwargs or {}))
        feature_shape = tuple(self.encoder.outputs[0].shape)
        self.bottleneck = bottleneck
        if bottleneck is not None:
            bottleneck_units = int(bottleneck.compute_output_shape(feature_shape)[-1])
        self.bottleneck_units = bottleneck_units
        if bottleneck is not None:
            feature_shape = (feature_shape[0], bottleneck_units)
        elif bottleneck_units is not None:
            if not isinstance(bottleneck_units, int) or bottleneck_units < 1:
                raise ValueError(
                    "Expected bottleneck_units to be a positive int or None. "
                    f"Received: bottleneck_units={bottleneck_units!r}"
                )
            self.bottleneck = make_bottleneck(bottleneck_units)
            self.bottleneck.build(feature_shape)
            feature_shape = (feature_shape[0], bottleneck_units)
        if not self.classifier.built:
            self.classifier.build(feature_shape)
        logits_shape = tuple(self.classifier.compute_output_shape(feature_shape))
        if self.method is not None and not self.method.built:
            self.method.build(
                (feature_shape, logits_shape)
                if self.method.needs_logits
                else feature_shape
            )
        self.strong_augmentation = strong_augmentation
        image_input = len(self.encoder.inputs[0].shape) == 4
        if (
            strong_augmentation is None
            and image_input
            and self.method is not None
            and self.method.needs_strong_view
        ):
            self.strong_augmentation = default_strong_augmentation()
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in (*_TRAIN_KEYS, "accuracy")
        }
        self.built = True

    # ----------------------------------------------------------------- forward
    def call(self, inputs, training=None):
        """Class probabilities for ``inputs`` (or for the source half of a pair)."""
        if isinstance(inputs, dict) and "source" in inputs:
            inputs = inputs["source"]
        logits = self.classifier(self._embed(inputs, training), training=training)
        return ops.softmax(logits)

    def _embed(self, inputs, training):
        features = _as_float32(self.encoder(inputs, training=training))
        if self.bottleneck is not None:
            features = self.bottleneck(features, training=training)
        return features

    def _forward(self, xs, xt, y, sample_weight, training):
        if self.method is None:
            fs = self._embed(xs, training)
            ls = self.classifier(fs, training=training)
            add = logged = accuracy = None
        else:
            ns = tf.shape(tf.nest.flatten(xs)[0])[0]
            nt = tf.shape(tf.nest.flatten(xt)[0])[0]
            parts = [xs, xt]
            strong_view = (
                training
                and self.method.needs_strong_view
                and self.strong_augmentation is not None
            )
            if strong_view:
                strong = self.strong_augmentation(xt, training=True)
                parts = [tf.cast(p, strong.dtype) for p in parts] + [strong]
            if self.domain_batchnorm and training:
                # each domain normalised by its own batch statistics; the moving
                # statistics keep the source pass's update only
                fs = self._embed(parts[0], training)
                ls = self.classifier(fs, training=training)
                target = tf.nest.map_structure(lambda *a: tf.concat(a, 0), *parts[1:])
                kept = self._moving_statistics()
                features = self._embed(target, training)
                logits = self.classifier(features, training=training)
                for variable, value in kept:
                    variable.assign(value)
                ns = 0
            else:
                joint = tf.nest.map_structure(lambda *a: tf.concat(a, 0), *parts)
                features = self._embed(joint, training)
                logits = self.classifier(features, training=training)
                fs, ls = features[:ns], logits[:ns]
            ft, lt = features[ns : ns + nt], logits[ns : ns + nt]
            extras = {"target_logits_strong": logits[ns + nt :]} if strong_view else {}
            if getattr(self.method, "needs_source_labels", False):  # IWDAN, IWCDAN
                extras["source_labels"] = ops.reshape(ops.cast(y, "int32"), (-1,))
            add, logged, accuracy = self.method.alignment_loss(
                fs, ft, ls, lt, training, **extras
            )
        y = ops.reshape(ops.cast(y, "int32"), (-1,))
        ce = ops.sparse_categorical_crossentropy(y, ls, from_logits=True)
        if sample_weight is not None:
            ce = ce * ops.reshape(ops.cast(sample_weight, ce.dtype), (-1,))
        source_loss = ops.mean(ce)
        total = source_loss if add is None else source_loss + ops.cast(add, ce.dtype)
        if self.losses:
            total = total + ops.cast(ops.sum(self.losses), total.dtype)
        correct = ops.cast(ops.equal(ops.argmax(ls, axis=-1), y), "float32")
        return total, source_loss, correct, logged, accuracy

    def _moving_statistics(self) -> list:
        """``(variable, its value now)`` for the moving statistics of every
        BatchNormalization layer that runs in training mode."""
        kept = []
        for layer in batchnorm_layers(self):
            if layer.trainable and layer.built:
                for variable in (layer.moving_mean, layer.moving_variance):
                    kept.append((variable, tf.identity(variable.value)))
        return kept

    # ------------------------------------------------------------ train / test
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        xs, xt = _split_pair(x)
        if y is None:
            raise ValueError("Expected labels for the source domain. Received: y=None")
        with tf.GradientTape() as tape:
            total, source_loss, correct, logged, accuracy = self._forward(
                xs, xt, y, sample_weight, training=True
            )
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = total / tf.cast(replicas, total.dtype)
            if hasattr(self.optimizer, "scale_loss"):
                scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_train_trackers(
            total, source_loss, correct, logged, accuracy
        )

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "Expected labelled data (x, y) to evaluate. Received: y=None"
            )
        if isinstance(x, dict) and set(x) == {"source", "target"}:
            outputs = self._forward(x["source"], x["target"], y, sample_weight, False)
            return self._update_train_trackers(*outputs)
        probs = self(x, training=False)
        y = ops.reshape(ops.cast(y, "int32"), (-1,))
        ce = ops.sparse_categorical_crossentropy(y, probs)
        if sample_weight is not None:
            ce = ce * ops.reshape(ops.cast(sample_weight, ce.dtype), (-1,))
        self._trackers["loss"].update_state(ops.mean(ce))
        correct = ops.cast(ops.equal(ops.argmax(probs, axis=-1), y), "float32")
        self._trackers["accuracy"].update_state(correct)
        return {k: self._trackers[k].result() for k in ("loss", "accuracy")}

    def _update_train_trackers(self, total, source_loss, correct, logged, accuracy):
        t = self._trackers
        t["loss"].update_state(total)
        t["source_loss"].update_state(source_loss)
        t["source_accuracy"].update_state(correct)
        keys = ["loss", "source_loss", "source_accuracy"]
        if logged is not None:
            t["domain_loss"].update_state(logged)
            keys.append("domain_loss")
        if accuracy is not None:
            name = self.method.accuracy_name
            t[name].update_state(accuracy)
            keys.append(name)
        return {k: t[k].result() for k in keys}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def compile(self, optimizer="adam", **kwargs: Any) -> None:
        """Compiles with an optimizer; losses and metrics are built in.

        Raises:
            ValueError: If ``loss`` or ``metrics`` are passed.
        """
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    "DomainAdaptationModel computes its own losses and metrics; do "
                    f"not pass {key}=. Received: {key}={kwargs[key]!r}"
                )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Re-compiles a loaded model (optimizer state is restored by Keras)."""
        config = keras.saving.deserialize_keras_object(config)
        config = {k: v for k, v in config.items() if v is not None}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ---------------------------------------------------------------- helpers
    @property
    def lambda_(self) -> float | None:
        """The alignment method's ``lambda_`` (None for source-only)."""
        return None if self.method is None else self.method.lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        if self.method is None:
            raise ValueError("A source-only model has no lambda_ to set.")
        self.method.lambda_ = value

    def features(self, x, batch_size: int = 256):
        """Features of ``x`` (after the bottleneck, if any) as a NumPy array."""
        return predict_eagerly(self.feature_model(), x, batch_size)

    def feature_model(self) -> keras.Model:
        """A functional model: inputs → the features the heads and alignment see."""
        mixed = any(
            layer.compute_dtype in ("bfloat16", "float16")
            for layer in self.encoder._flatten_layers(recursive=True)
        )
        if self.bottleneck is None and not mixed:
            return self.encoder
        inputs = self._inputs()
        # The symbolic output keeps the dtype the encoder was built with, so the
        # cast is unconditional here (a no-op on float32 features).
        features = ops.cast(self.encoder(inputs), "float32")
        if self.bottleneck is not None:
            features = self.bottleneck(features)
        return keras.Model(inputs, features)

    def _inputs(self):
        inputs = [
            keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype)
            for t in self.encoder.inputs
        ]
        return inputs[0] if len(inputs) == 1 else inputs

    def inference_model(self, name: str | None = None) -> keras.Model:
        """Encoder + label head + softmax, with no GRL or discriminator.

        The returned functional model shares weights with this one and is ready for
        ``predict``, ``evaluate`` (compiled with sparse categorical cross-entropy,
        accuracy and plain SGD; recompile to train it further), ``.keras`` saving and
        ``export``.

        Args:
            name: str or None. Model name. Defaults to ``"<name>_inference"``.

        Returns:
            A compiled `keras.Model` mapping inputs to class probabilities.
        """
        inputs = self._inputs()
        features = self.encoder(inputs)
        if self.bottleneck is not None:
            features = self.bottleneck(features)
        logits = self.classifier(features)
        probs = keras.layers.Activation("softmax", name="probabilities")(logits)
        model = keras.Model(inputs, probs, name=name or f"{self.name}_inference")
        return compile_for_evaluation(model)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.encoder),
                "num_classes": self.num_classes,
                "classifier": keras.saving.serialize_keras_object(self.classifier),
                "method": None
                if self.method is None
                else keras.saving.serialize_keras_object(self.method),
                "bottleneck_units": self.bottleneck_units,
                "bottleneck": None
                if self.bottleneck is None
                else keras.saving.serialize_keras_object(self.bottleneck),
                "strong_augmentation": None
                if self.strong_augmentation is None
                else keras.saving.serialize_keras_object(self.strong_augmentation),
                "domain_batchnorm": self.domain_batchnorm,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        # Files saved before the rename hold the built encoder under "encoder".
        config = rename_config_keys(config, {"encoder": "backbone"}, cls.__name__)
        for key in (
            "backbone",
            "classifier",
            "method",
            "strong_augmentation",
            "bottleneck",
        ):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def compile_for_evaluation(model: keras.Model) -> keras.Model:
    """Compiles a probability model so ``evaluate`` reports loss and accuracy.

    Plain SGD has no slot variables, so a saved file reloads without "Skipping
    variable loading for optimizer" warnings; recompile to train further.
    """
    model.compile(
        optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


#: Momentum of the bottleneck's BatchNormalization moving statistics.
BOTTLENECK_MOMENTUM = 0.9


def make_bottleneck(units: int) -> keras.Sequential:
    """``Dense(units) → BatchNormalization → ReLU``: the normalised bottleneck.

    The moving statistics use momentum 0.9 (PyTorch's default, which the CDAN and
    TLlib bottlenecks run with), not Keras's 0.99: with ~17 steps per epoch (a
    600-image source at batch 32) 0.99 lags the features by several epochs, so
    inference-mode accuracy on held-out source swung between 0.10 and 0.96 from
    epoch to epoch while training accuracy was 0.99, and the warm-up end and the
    collapse guard, which read it, acted on noise.
    """
    return keras.Sequential(
        [
            keras.layers.Dense(units, name="bottleneck_dense"),
            keras.layers.BatchNormalization(
                momentum=BOTTLENECK_MOMENTUM, name="bottleneck_bn"
            ),
            keras.layers.ReLU(name="bottleneck_relu"),
        ],
        name="bottleneck",
    )


def default_strong_augmentation(seed: int | None = None) -> keras.Sequential:
    """The strong view of target images for self-training (FixMatch-style).

    Random translation (±12.5%), zoom (±15%), rotation (±10°), contrast (±40%) and
    brightness (±20%): label-preserving for digits and most photos (no flips).
    Inputs are raw images; the layers are value-range agnostic except brightness,
    which assumes [0, 255].
    """
    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=seed),
            layers.RandomZoom(0.15, fill_mode="reflect", seed=seed),
            layers.RandomRotation(10 / 360, fill_mode="reflect", seed=seed),
            layers.RandomContrast(0.4, value_range=(0, 255), seed=seed),
            layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
        ],
        name="strong_augmentation",
    )


@keras.saving.register_keras_serializable(package="keras_transfer")
class DANN(DomainAdaptationModel):
    """Domain-Adversarial Neural Network (Ganin et al. 2016) for ``model.fit``.

    Encoder → label head, and encoder → `GradientReversal` → domain discriminator.
    Schedule λ with `DomainLambdaScheduler` (``2/(1+exp(-10p)) - 1``) and, optionally,
    anneal the learning rate with `DANNLearningRateSchedule`. Use `inference_model()`
    for prediction and export.

    Args:
        backbone: See `DomainAdaptationModel` (``encoder=`` is a deprecated alias).
        num_classes: int or None. See `DomainAdaptationModel`.
        discriminator_units: sequence of int. Hidden sizes of the discriminator
            (its ``DomainAdversarial.hidden_units``). Defaults to ``(64,)``.
        discriminator_dropout: float. Discriminator dropout. Defaults to 0.0.
        lambda_: float. Initial λ (a scheduler overrides it). Defaults to 1.0.
        **kwargs: Other `DomainAdaptationModel` arguments.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import DANN
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    dann = DANN(backbone, num_classes=3)
    assert dann.inference_model().output_shape == (None, 3)
    ```

    References:
        Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR.
    """

    @renamed_arguments(encoder="backbone")
    def __init__(
        self,
        backbone: Any,
        num_classes: int | None = None,
        *,
        discriminator_units: Sequence[int] = (64,),
        discriminator_dropout: float = 0.0,
        lambda_: float = 1.0,
        method: Any = None,
        **kwargs: Any,
    ) -> None:
        if method is None:
            method = DomainAdversarial(
                hidden_units=discriminator_units,
                dropout=discriminator_dropout,
                lambda_=lambda_,
                name="domain_adversarial",
            )
        elif not isinstance(method, DomainAdversarial):
            raise ValueError(
                f"DANN uses a DomainAdversarial method. Received: method={method!r}"
            )
        kwargs.pop("method_kwargs", None)
        super().__init__(backbone, num_classes, method=method, **kwargs)
