"""Training-only augmentation and regularisation: RandAugment, MixUp/CutMix, smoothing.

Two places, chosen by what each method needs:

* **Image-only augmentation** (flips, rotation, zoom, contrast, ``keras.layers.RandAugment``)
  goes *inside* the model as one ``keras.Sequential`` named ``"augmentation"``, made by
  ``build_augmentation``. Keras' random layers are identity at inference, and
  ``strip_augmentation(model)`` returns the inference model without them for export.
* **MixUp and CutMix** mix labels as well as images, so they belong in the data
  pipeline: ``mix_dataset(ds, num_classes, mixup_alpha=..., cutmix=...)``. Measured
  with Keras 3.15: a ``keras.layers.MixUp`` placed inside a functional model mixes the
  images but leaves the labels untouched (the model then learns from wrong targets),
  while called on ``{"images": x, "labels": y}`` in ``tf.data`` it mixes both.

Mixed (soft) labels and label smoothing need a cross-entropy that takes soft targets;
``SmoothedCrossentropy`` takes integer or soft labels alike, and ``LabelAccuracy``
scores both, so one compiled model trains on plain and mixed batches. Weight decay is
the builders' ``weight_decay=`` (AdamW).

Examples:
```python
import numpy as np
from keras_transfer._backend import keras, tf
from keras_transfer.augment import build_augmentation, mix_dataset, strip_augmentation

aug = build_augmentation(flip="horizontal", randaugment=True)
inputs = keras.Input((16, 16, 3))
x = keras.layers.Rescaling(1 / 255)(aug(inputs))
outputs = keras.layers.Dense(3, "softmax")(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inputs, outputs)
export_model = strip_augmentation(model)
assert "augmentation" not in [layer.name for layer in export_model.layers]
ds = tf.data.Dataset.from_tensor_slices(
    (np.zeros((8, 16, 16, 3), "float32"), np.arange(8) % 3)
).batch(4)
mixed = mix_dataset(ds, 3, mixup_alpha=0.2)
```

References:
    Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"; Yun et al. 2019,
    "CutMix"; Cubuk et al. 2020, "RandAugment"; Szegedy et al. 2016 (label
    smoothing); Loshchilov and Hutter 2019 (decoupled weight decay, AdamW).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer.config.library import AugmentationConfig
from keras_transfer.layers import training_only

__all__ = [
    "AUGMENTATION_LAYER_TYPES",
    "AugmentationConfig",
    "LabelAccuracy",
    "SmoothedCrossentropy",
    "build_augmentation",
    "builder_options",
    "is_augmentation_layer",
    "mix_dataset",
    "smoothed_loss_and_metrics",
    "strip_augmentation",
]

AUGMENTATION_NAME = "augmentation"

# Random, training-only augmentation classes: defined once, with the registry that
# export uses (keras_transfer.layers.training_only).
AUGMENTATION_LAYER_TYPES = training_only.AUGMENTATION_LAYER_TYPES


def _config(config: Any, options: dict) -> AugmentationConfig:
    if config is None or isinstance(config, dict):
        given = {**(config or {}), **options}
        known = [f.name for f in fields(AugmentationConfig)]
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown augmentation option(s) {unknown}. Expected some of {known}."
            )
        return AugmentationConfig(**given)
    if isinstance(config, AugmentationConfig):
        return AugmentationConfig(**{**asdict(config), **options})
    raise ValueError(
        "Expected augmentation config to be an AugmentationConfig, a dict or None. "
        f"Received: {type(config).__name__}"
    )


def build_augmentation(
    config: AugmentationConfig | dict | None = None, **options: Any
) -> keras.Sequential | None:
    """Builds the in-model, image-only augmentation stack from options.

    MixUp/CutMix are not included (they need labels: see ``mix_dataset``), nor are
    label smoothing and weight decay (loss and optimizer options).

    Args:
        config: AugmentationConfig, dict or None. Options; keyword ``options``
            override its fields.
        **options: fields of ``AugmentationConfig``.

    Returns:
        A ``keras.Sequential`` named ``"augmentation"``, or None when no image
        augmentation is switched on.

    Raises:
        ValueError: for unknown or invalid options.
    """
    cfg = _config(config, options)
    seed, layers = cfg.seed, []
    if cfg.flip != "none":
        layers.append(keras.layers.RandomFlip(cfg.flip, seed=seed))
    if cfg.rotation:
        layers.append(keras.layers.RandomRotation(cfg.rotation, seed=seed))
    if cfg.zoom:
        layers.append(keras.layers.RandomZoom(cfg.zoom, seed=seed))
    if cfg.translation:
        t = cfg.translation
        layers.append(keras.layers.RandomTranslation(t, t, seed=seed))
    if cfg.contrast:
        layers.append(
            keras.layers.RandomContrast(
                cfg.contrast, value_range=tuple(cfg.value_range), seed=seed
            )
        )
    if cfg.randaugment:
        layers.append(
            keras.layers.RandAugment(
                value_range=tuple(cfg.value_range),
                num_ops=cfg.randaugment_ops,
                factor=cfg.randaugment_factor,
                seed=seed,
            )
        )
    if not layers:
        return None
    return keras.Sequential(layers, name=AUGMENTATION_NAME)


def is_augmentation_layer(layer: Any) -> bool:
    """True for Keras random (training-only) layers and the ``"augmentation"`` stack."""
    if isinstance(layer, AUGMENTATION_LAYER_TYPES):
        return True
    if isinstance(layer, keras.Sequential):
        if layer.name.startswith(AUGMENTATION_NAME):
            return True
        inner = layer.layers
        return bool(inner) and all(is_augmentation_layer(sub) for sub in inner)
    return False


def strip_augmentation(model: keras.Model) -> keras.Model:
    """Returns the inference model: the same layers and weights, minus augmentation.

    The layers are shared, not copied, so the result always has the trained weights.

    Args:
        model: keras.Model. A Sequential or functional model; augmentation layers
            must sit at its top level (as ``build_augmentation``'s stack does).

    Returns:
        A model without augmentation layers (``model`` itself when it has none).

    Raises:
        ValueError: for a subclassed model that contains augmentation layers.
    """
    if not any(is_augmentation_layer(layer) for layer in model.layers):
        return model
    if isinstance(model, keras.Sequential):
        kept = [layer for layer in model.layers if not is_augmentation_layer(layer)]
        head = model.inputs[0]
        inputs = keras.Input(shape=head.shape[1:], dtype=head.dtype)
        return keras.Sequential([inputs, *kept], name=model.name)

    def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if is_augmentation_layer(layer):
            return args[0]
        return layer(*args, **kwargs)

    try:
        return keras.models.clone_model(
            model, clone_function=lambda layer: layer, call_function=call_function
        )
    except ValueError as error:
        raise ValueError(
            "strip_augmentation needs a Sequential or functional model. Received: "
            f"{type(model).__name__} ({error})"
        ) from error


def mix_dataset(
    dataset: tf.data.Dataset,
    num_classes: int,
    *,
    mixup_alpha: float = 0.0,
    cutmix: float = 0.0,
    seed: int | None = None,
) -> tf.data.Dataset:
    """MixUp and/or CutMix on a batched ``(images, labels)`` dataset.

    Labels (integers or one-hot) become soft one-hot vectors. With both methods on,
    each batch gets one of them at random (probability 1/2).

    Args:
        dataset: tf.data.Dataset of batched ``(images, labels)``.
        num_classes: int. Number of classes.
        mixup_alpha: float. MixUp's Beta parameter; 0 switches MixUp off.
        cutmix: float. CutMix's factor; 0 switches CutMix off.
        seed: int or None. Seed of the mixing layers.

    Returns:
        The mapped dataset of ``(images, soft_labels)``; ``dataset`` itself when both
        are off.

    Raises:
        ValueError: ``num_classes`` below 2, a negative ``mixup_alpha`` or ``cutmix``,
            or a dataset that is not batched ``(images, labels)``. A label outside
            ``[0, num_classes)`` fails the batch that holds it
            (``InvalidArgumentError`` naming the range) instead of becoming an
            all-zero target.
    """
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Received: {num_classes}")
    for name, value in (("mixup_alpha", mixup_alpha), ("cutmix", cutmix)):
        if not value >= 0:
            raise ValueError(
                f"Expected {name} >= 0 (0 switches it off). Received: {name}={value!r}"
            )
    spec = getattr(dataset, "element_spec", None)
    rank = spec[0].shape.rank if isinstance(spec, tuple) and len(spec) == 2 else 0
    if spec is None or rank not in (None, 4):
        raise ValueError(
            "Expected a batched tf.data.Dataset of (images, labels), images of shape "
            f"(batch, height, width, channels). Received: {spec or type(dataset)}. "
            "Arrays: tf.data.Dataset.from_tensor_slices((x, y)).batch(32); single "
            "examples: dataset.batch(32); dicts: map them to (images, labels)."
        )
    mixers = []
    if mixup_alpha > 0:
        mixers.append(keras.layers.MixUp(alpha=mixup_alpha, seed=seed))
    if cutmix > 0:
        mixers.append(keras.layers.CutMix(factor=cutmix, seed=seed))
    if not mixers:
        return dataset

    def apply(images: Any, labels: Any) -> tuple:
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 1 or labels.shape[-1] != num_classes:
            ids = tf.reshape(tf.cast(labels, "int32"), [-1])
            # tf.one_hot makes an all-zero row for an id out of range: no error, and
            # the example silently drops out of the loss
            message = f"mix_dataset: expected labels in [0, {num_classes})"
            check = tf.debugging.assert_less(ids, num_classes, message=message)
            with tf.control_dependencies(
                [check, tf.debugging.assert_non_negative(ids)]
            ):
                labels = tf.one_hot(ids, num_classes)
        images = tf.cast(images, "float32")
        labels = tf.cast(labels, "float32")

        def run(mixer: Any) -> Any:
            def fn() -> tuple:
                out = mixer({"images": images, "labels": labels}, training=True)
                return out["images"], out["labels"]

            return fn

        if len(mixers) == 1:
            return run(mixers[0])()
        coin = tf.random.uniform([], seed=seed) < 0.5
        return tf.cond(coin, run(mixers[0]), run(mixers[1]))

    return dataset.map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def _dense_labels(y_true: Any, y_pred: Any) -> Any:
    classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == classes:
        return keras.ops.cast(y_true, y_pred.dtype)
    y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
    return keras.ops.one_hot(y_true, classes, dtype=y_pred.dtype)


@keras.saving.register_keras_serializable(package="keras_transfer")
class SmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy for integer *or* soft labels, with label smoothing.

    ``keras.losses.SparseCategoricalCrossentropy`` has no label smoothing and rejects
    MixUp's soft labels; ``CategoricalCrossentropy`` rejects integer labels. This loss
    takes either, so one compiled model trains on plain and mixed batches.

    Args:
        label_smoothing: float in [0, 1). Defaults to 0.0.
        from_logits: bool. Whether predictions are logits. Defaults to False.
        **kwargs: passed to ``keras.losses.Loss`` (``name``, ``reduction``).
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
        name: str = "smoothed_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                f"Expected label_smoothing in [0, 1). Received: {label_smoothing}"
            )
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = _dense_labels(y_true, y_pred)
        return keras.losses.categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"label_smoothing": self.label_smoothing, "from_logits": self.from_logits}
        )
        return config


def _label_accuracy(y_true: Any, y_pred: Any) -> Any:
    y_true = _dense_labels(y_true, y_pred)
    return keras.ops.cast(
        keras.ops.argmax(y_true, -1) == keras.ops.argmax(y_pred, -1), "float32"
    )


@keras.saving.register_keras_serializable(package="keras_transfer")
class LabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy for integer or soft (mixed / one-hot) labels: argmax agreement."""

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(_label_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


def smoothed_loss_and_metrics(
    label_smoothing: float, multi_label: bool = False, metrics: Any = None
) -> tuple:
    """Loss and metrics for label smoothing and/or soft (MixUp/CutMix) labels.

    Args:
        label_smoothing: float in [0, 1).
        multi_label: bool. Binary cross-entropy with smoothing (metrics unchanged).
        metrics: the caller's metrics, or None for ``[LabelAccuracy()]``.

    Returns:
        ``(loss, metrics)``.
    """
    if multi_label:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), metrics
    if metrics is None:
        metrics = [LabelAccuracy(name="accuracy")]
    return SmoothedCrossentropy(label_smoothing), metrics


def builder_options(augmentation: Any) -> tuple:
    """Splits a builder's ``augmentation=`` argument into what goes where.

    Args:
        augmentation: None, an ``AugmentationConfig``, a dict of its fields, or a
            ready Keras layer (used as the in-model stack as it is).

    Returns:
        ``(layer_or_None, label_smoothing_or_None, weight_decay_or_None)``: the
        in-model stack; the label smoothing the loss needs (0.0 when MixUp/CutMix is
        on, so soft labels are accepted; None when nothing asks for it); the
        weight decay (None when 0).
    """
    if augmentation is None:
        return None, None, None
    if isinstance(augmentation, keras.layers.Layer):
        return augmentation, None, None
    cfg = _config(augmentation, {})
    smoothing = (
        cfg.label_smoothing if (cfg.label_smoothing or cfg.mixes_labels) else None
    )
    return build_augmentation(cfg), smoothing, (cfg.weight_decay or None)
