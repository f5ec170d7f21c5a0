"""Pretrain a small image backbone on labelled data and save it as a KerasHub preset.

The offline path to a *pretrained* backbone: where no pretrained weights can be
downloaded, train one on whatever labelled images are at hand (a folder, the built-in
digits) and load it back anywhere a backbone spec is taken, as
`"keras_hub:<preset dir>"`. The preset holds a KerasHub `VGGBackbone` (fully
convolutional, so it accepts any image size) and its `ImageConverter` (raw `[0, 255]`
pixels -> `[0, 1]`). `keras-transfer pretrain` and the demo both call
`pretrain_preset`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.backbones import PRESET_FILES
from keras_transfer.data.files import labelled_data, lazy_asarray
from keras_transfer.data.folders import ImageFiles, files_dataset
from keras_transfer.initializers import check_initializer, initialize_convolutions
from keras_transfer.runs import check_replaceable

__all__ = [
    "PretrainResult",
    "augment_probability",
    "color_augment",
    "make_vgg_backbone",
    "pretrain_preset",
]


@dataclass
class PretrainResult:
    """What `pretrain_preset` did.

    Attributes:
        preset_dir: str. The preset directory (load with `"keras_hub:<preset_dir>"`).
        train_accuracy: float. Accuracy on the (un-augmented) training images.
        val_accuracy: float or None. Accuracy on the validation images, if given.
        history: dict. The `fit` history (metric -> per-epoch values).
        model: keras.Model. The classifier that was trained (backbone + head).
    """

    preset_dir: str
    train_accuracy: float
    val_accuracy: float | None
    history: dict = field(default_factory=dict)
    model: Any = None


def make_vgg_backbone(
    filters: tuple | list = (32, 64, 128), repeats: tuple | list | None = None
) -> Any:
    """A small KerasHub `VGGBackbone` that takes images of any size.

    Args:
        filters: sequence of int. Convolution filters of each stage (each stage ends
            with 2x2 max pooling). Defaults to `(32, 64, 128)` (~93k parameters).
        repeats: sequence of int or None. Convolutions per stage; None means one per
            stage.

    Returns:
        A `keras_hub.models.VGGBackbone`.
    """
    import keras_hub

    filters = [int(f) for f in filters]
    repeats = [1] * len(filters) if repeats is None else [int(r) for r in repeats]
    if not filters or any(f < 1 for f in filters):
        raise ValueError(
            f"Expected filters to be a non-empty list of ints >= 1. "
            f"Received: filters={filters}"
        )
    if len(repeats) != len(filters) or any(r < 1 for r in repeats):
        raise ValueError(
            "Expected repeats to hold one int >= 1 per entry of filters "
            f"({len(filters)}). Received: repeats={repeats}"
        )
    return keras_hub.models.VGGBackbone(
        stackwise_num_repeats=repeats,
        stackwise_num_filters=filters,
        image_shape=(None, None, 3),
    )


def color_augment(images: Any, labels: Any, seed: Any = None) -> tuple:
    """Random inversion and per-channel colour jitter of raw `[0, 255]` images.

    Half the images are inverted (`255 - x`); then each channel is scaled by a
    random gain in [0.3, 1] and shifted by a random offset that keeps it in range.
    Features that survive this do not depend on a fixed foreground/background
    colour, which is what lets them transfer to coloured, textured targets.

    Args:
        images: tensor `(batch, h, w, 3)`, float pixels in `[0, 255]`.
        labels: tensor. Passed through.
        seed: None, or an integer tensor of shape `(2,)`: the draws are then
            stateless (`tf.random.stateless_uniform`), the same for the same seed
            whatever ran before or in parallel. None draws from TensorFlow's
            global random state. Defaults to None.

    Returns:
        `(augmented images, labels)`.
    """
    import tensorflow as tf

    x = tf.cast(images, "float32")
    n = tf.shape(x)[0]
    if seed is None:
        draws = [tf.random.uniform((n, 1, 1, c)) for c in (1, 3, 3)]
    else:
        seeds = tf.random.experimental.stateless_split(seed, 3)
        draws = [
            tf.random.stateless_uniform((n, 1, 1, c), seed=seeds[i])
            for i, c in enumerate((1, 3, 3))
        ]
    x = tf.where(draws[0] < 0.5, 255.0 - x, x)
    gain = 0.3 + 0.7 * draws[1]
    offset = draws[2] * 255.0 * (1.0 - gain)
    return x * gain + offset, labels


# The default `augment_warmup` of `pretrain_preset` (benchmarks/pretrain_augmentation.py).
AUGMENT_WARMUP = 0.3


def augment_probability(epoch: int, epochs: int, warmup: float) -> float:
    """The share of training images `pretrain_preset` augments in `epoch` (0-based).

    It rises linearly from 0 in the first epoch to 1 after `warmup * epochs` epochs
    and stays there; `warmup=0` augments every image from the start.

    Args:
        epoch: int. The epoch, from 0.
        epochs: int. All epochs of the run.
        warmup: float in `[0, 1)`. The fraction of the epochs the ramp lasts.

    Returns:
        A float in `[0, 1]`.

    Examples:
    ```python
    from keras_transfer.pretrain import augment_probability
    assert [augment_probability(e, 10, 0.3) for e in range(4)] == [0, 1 / 3, 2 / 3, 1]
    assert augment_probability(0, 10, 0.0) == 1.0
    ```
    """
    ramp = round(warmup * epochs)
    return 1.0 if ramp < 1 else min(1.0, epoch / ramp)


def _ramped_augment(probability: Any, epoch: Any = 0, seed: int = 0) -> Any:
    """`color_augment` applied to each image with the probability a variable holds.

    The returned ``augment(images, labels, index=0)`` draws statelessly, seeded by
    ``(seed, epoch, index)`` (``index``: the batch; ``epoch``: a variable the ramp's
    callback sets): the same every run, however many batches a parallel ``map``
    prepares at once.
    """
    import tensorflow as tf

    def augment(images: Any, labels: Any, index: Any = 0) -> tuple:
        x = tf.cast(images, "float32")
        step = tf.cast(epoch, "int64") * (1 << 24) + tf.cast(index, "int64")
        key = tf.stack([tf.constant(seed, "int64"), step])
        seeds = tf.random.experimental.stateless_split(key, 2)
        jittered, _ = color_augment(images, labels, seed=seeds[0])
        shape = (tf.shape(x)[0], 1, 1, 1)
        chosen = tf.random.stateless_uniform(shape, seed=seeds[1]) < probability
        return tf.where(chosen, jittered, x), labels

    return augment


class _AugmentRamp(keras.callbacks.Callback):
    """Sets the epoch and the augmentation probability before every epoch."""

    def __init__(
        self, probability: Any, epoch: Any, epochs: int, warmup: float
    ) -> None:
        super().__init__()
        self.probability, self.epoch = probability, epoch
        self.epochs, self.warmup = epochs, warmup

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)
        self.probability.assign(augment_probability(epoch, self.epochs, self.warmup))


def _check(x: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float) -> None:
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y) or not len(x):
        raise ValueError(
            "Expected x_train of shape (n, height, width, 3) with n > 0 and as many "
            f"labels. Received: x_train.shape={x.shape}, y_train.shape={y.shape}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Expected epochs to be an int >= 1. Received: {epochs!r}")
    if not learning_rate > 0:
        raise ValueError(
            f"Expected learning_rate > 0. Received: learning_rate={learning_rate!r}"
        )


def _accuracy(model: Any, data: Any) -> float:
    """`evaluate`'s accuracy on ``(x, y)`` arrays or a dataset of batches."""
    args = data if isinstance(data, tuple) else (data,)
    return float(model.evaluate(*args, verbose=0)[1])


def _write_preset(backbone: Any, converter: Any, preset_dir: str) -> None:
    """Writes to a temporary sibling, then moves it into place (never half-written)."""
    parent = os.path.dirname(os.path.abspath(preset_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".preset-", dir=parent)
    try:
        backbone.save_to_preset(tmp)
        converter.save_to_preset(tmp)
        if os.path.exists(preset_dir):
            check_replaceable(preset_dir, PRESET_FILES, "a KerasHub preset")
            shutil.rmtree(preset_dir)
        os.replace(tmp, preset_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pretrain_preset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    preset_dir: str,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    num_classes: int | None = None,
    filters: tuple | list = (32, 64, 128),
    repeats: tuple | list | None = None,
    epochs: int = 30,
    learning_rate: float = 1e-3,
    batch_size: int = 32,
    augment: bool = True,
    augment_warmup: float = AUGMENT_WARMUP,
    conv_initializer: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    callbacks: list | None = None,
    verbose: Any = 0,
) -> PretrainResult:
    """Trains a small VGG backbone with a classifier head; saves the backbone as a preset.

    Args:
        x_train: np.ndarray. Raw images `(n, h, w, 3)` in `[0, 255]`, or image
            files (`keras_transfer.data.image_files`), streamed from disk.
        y_train: np.ndarray. Integer labels `(n,)`.
        preset_dir: str. Where the KerasHub preset goes (written atomically).
        x_val: np.ndarray, image files or None. Validation images.
        y_val: np.ndarray or None. Validation labels.
        num_classes: int or None. Defaults to `max(y_train) + 1`.
        filters: sequence of int. See `make_vgg_backbone`. Defaults to
            `(32, 64, 128)`.
        repeats: sequence of int or None. See `make_vgg_backbone`.
        epochs: int. Training epochs. Defaults to 30.
        learning_rate: float. Adam learning rate. Defaults to 1e-3.
        batch_size: int. Defaults to 32.
        augment: bool. `color_augment` the training batches. Defaults to True.
        augment_warmup: float in `[0, 1)`. With `augment`, the share of images
            augmented rises from 0 in the first epoch to all of them after this
            fraction of the epochs (`augment_probability`). Fully jittered from the
            first step, the network sat at chance for about 12 of 30 epochs on the
            built-in digits; see `benchmarks/pretrain_augmentation.py`. 0 jitters
            every image from the start (the behaviour before stop 43). Defaults to
            0.3.
        conv_initializer: str or None. A Keras initializer name (e.g.
            ``"he_normal"``) that draws the backbone's convolution kernels afresh
            (seeded by ``seed``); None keeps KerasHub's own (Glorot uniform).
            Defaults to None.
        seed: int. Seed of initialization, shuffling and the jitter (whose draws
            are stateless, keyed by seed, epoch and batch): the same seed and data
            give the same preset on every run (on one machine). Defaults to 0.
        overwrite: bool. Replace an existing `preset_dir`. Defaults to False.
        callbacks: list or None. Keras callbacks of `fit`.
        verbose: Passed to `fit`.

    Returns:
        A `PretrainResult`.

    Raises:
        ValueError: bad arrays or settings, or `preset_dir` exists and not
            `overwrite`.
        FileExistsError: `overwrite` and `preset_dir` is a non-empty folder that
            is not a KerasHub preset (`keras_transfer.runs.check_replaceable`).

    Examples:
    ```python
    import numpy as np
    from keras_transfer import load_backbone
    from keras_transfer.pretrain import pretrain_preset
    x = np.random.randint(0, 255, (16, 16, 16, 3)).astype("uint8")
    result = pretrain_preset(x, np.arange(16) % 2, "/tmp/kt_pretrain_doc",
                             filters=(4, 8), epochs=1, overwrite=True)
    backbone = load_backbone(f"keras_hub:{result.preset_dir}")
    assert backbone.pretrained and backbone.preprocessor is not None
    ```
    """
    import keras_hub
    import tensorflow as tf

    from keras_transfer.backbones import LoadedBackbone
    from keras_transfer.builders import build_classifier

    x_train, y_train = lazy_asarray(x_train), np.asarray(y_train, "int32")
    _check(x_train, y_train, epochs, learning_rate)
    if (
        isinstance(augment_warmup, bool)
        or not isinstance(augment_warmup, (int, float))
        or not 0.0 <= augment_warmup < 1.0
    ):
        raise ValueError(
            "Expected augment_warmup to be a float in [0, 1). "
            f"Received: augment_warmup={augment_warmup!r}"
        )
    check_initializer(conv_initializer)
    if os.path.exists(preset_dir) and not overwrite:
        raise ValueError(
            f"The preset directory exists: preset_dir={preset_dir!r}. Pass "
            "overwrite=True (CLI: --overwrite) or choose another directory."
        )
    check_replaceable(preset_dir, PRESET_FILES, "a KerasHub preset")
    num_classes = int(num_classes or int(y_train.max()) + 1)
    keras.utils.set_random_seed(seed)
    backbone = make_vgg_backbone(filters, repeats)
    if conv_initializer is not None:
        initialize_convolutions(backbone, conv_initializer, seed)
    converter = keras_hub.layers.ImageConverter(image_size=None, scale=1.0 / 255.0)
    model = build_classifier(
        LoadedBackbone(
            model=backbone,
            preprocessor=converter,
            spec="pretrain:vgg",
            input_shape=tuple(x_train.shape[1:]),
            pretrained=False,
        ),
        num_classes,
        unfreeze_depth="all",
        dropout=0.1,
        learning_rate=learning_rate,
    )
    if isinstance(x_train, ImageFiles):  # a large folder: decoded as it streams
        train = files_dataset(
            x_train, y_train, shuffle=True, seed=seed, dtype="float32"
        )
    else:
        train = tf.data.Dataset.from_tensor_slices((x_train.astype("float32"), y_train))
        train = train.shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch_size)
    callbacks = list(callbacks or [])
    if augment:
        # Stateless draws keyed by (seed, epoch, batch): the parallel map then gives
        # the same jitter on every run (stateful draws, handed out in whatever order
        # the parallel calls ran, made two runs of one seed differ).
        probability = tf.Variable(0.0, trainable=False, dtype="float32")
        epoch = tf.Variable(0, trainable=False, dtype="int64")
        callbacks.insert(0, _AugmentRamp(probability, epoch, epochs, augment_warmup))
        ramped = _ramped_augment(probability, epoch, seed)
        train = train.enumerate().map(
            lambda index, batch: ramped(*batch, index=index),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    validation = None
    if x_val is not None and y_val is not None and len(x_val):
        validation = labelled_data(lazy_asarray(x_val), y_val, batch_size, "float32")
    history = model.fit(
        train.prefetch(tf.data.AUTOTUNE),
        validation_data=validation,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,  # the dataset is shuffled above
        verbose=verbose,
    )
    train_acc = _accuracy(model, labelled_data(x_train, y_train, batch_size))
    val_acc = None
    if validation is not None:
        val_acc = _accuracy(model, validation)
    _write_preset(backbone, converter, preset_dir)
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return PretrainResult(preset_dir, train_acc, val_acc, hist, model)
