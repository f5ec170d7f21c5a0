"""The candidates of `adapt`: which methods to train and how one branch is trained.

`adapt` (pipeline.py) warms up once and calls `train_candidate` for each method
it branches from the warm-up: the method built with `METHOD_DEFAULTS` (a ``+`` name
builds a `CombinedAlignment`), a fresh optimizer that continues with the warm-up's
state, the `AdaptationController` ramp and guard, and the resumable backup.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.batchnorm import adapt_batchnorm
from keras_transfer.adaptation.combined import (
    CombinedAlignment,
    build_parts,
    split_method_name,
)
from keras_transfer.adaptation.methods import get_alignment_method
from keras_transfer.adaptation.model import DomainAdaptationModel
from keras_transfer.adaptation.recipe import AdaptationController
from keras_transfer.adaptation.result import carry_optimizer_state
from keras_transfer.adaptation.weighted import (
    ClassWeightEstimator,
    class_weighted_parts,
)

#: Methods "auto" tries by default (branched from one shared warm-up), ranked by
#: EnsV (`DEFAULT_SELECTOR`). Since stop 23: on four pairs written before any run
#: on them, EnsV over these five scored 2.0 points above the earlier default (MCC
#: and CDAN by DEV); benchmarks/results/domain_adaptation_fresh.json.
AUTO_CANDIDATES = ("source_only", "bnm", "cdan", "dann", "mcc")
#: Default constructor arguments of each method inside `adapt`.
METHOD_DEFAULTS: dict[str, dict] = {
    "dann": {"hidden_units": (1024, 1024), "dropout": 0.5},
    "cdan": {"hidden_units": (1024, 1024), "dropout": 0.5},
    "iwdan": {"hidden_units": (1024, 1024), "dropout": 0.5},
    "iwcdan": {"hidden_units": (1024, 1024), "dropout": 0.5},
}
_NO_TRAINING = ("source_only", "adabn")


# keras.io's fine-tuning guide augments with RandomRotation(0.1); translation is the
# standard jitter for small images (French et al. 2018). No flip: it changes the class
# of digits and text. Measured in benchmarks/results/domain_adaptation.json.
AUTO_AUGMENTATION = {"translation": 0.1, "rotation": 0.1}


# French et al. 2018 flip and scale the intensity of digits for their hardest pairs;
# a hue shift is the colour analogue. For shifts of polarity, contrast and colour.
APPEARANCE_AUGMENTATION = {
    "invert": 0.5,
    "contrast": 0.5,
    "brightness": 0.2,
    "hue": 0.5,
}
#: The names ``source_augmentation`` accepts besides None and a callable.
SOURCE_AUGMENTATIONS = ("default", "auto", "appearance", "auto+appearance")
#: What ``"default"`` (``adapt``'s default) runs on images in [0, 1] or [0, 255]. It
#: lifted most methods on 7 of the 8 image pairs of
#: benchmarks/results/domain_adaptation_appearance.json (docs/domain_adaptation.md).
DEFAULT_SOURCE_AUGMENTATION = "appearance"
#: What ``source_augmentation="choose"`` compares (the first wins ties): `adapt`
#: runs "auto" once with each and keeps the run whose choice agrees most with its
#: pool (rule J; benchmarks/results/agreement.json, docs/domain_adaptation.md).
CHOOSABLE_AUGMENTATIONS = ("default", "auto+appearance")


def source_augmentation_for(augmentation: Any, xs: Any, seed: int = 0) -> Any:
    """Resolves ``adapt``'s ``source_augmentation`` for source inputs ``xs``.

    Args:
        augmentation: a name in `SOURCE_AUGMENTATIONS`, None or a callable.
            ``"default"`` is `DEFAULT_SOURCE_AUGMENTATION` (``"appearance"``) for
            images whose values are in [0, 1] or [0, 255], and None for any other
            input (no error). ``"auto"`` is random translation (±10% of the
            height and width) and rotation (±0.1 turn, the keras.io fine-tuning
            guide's `RandomRotation(0.1)`). ``"appearance"`` is random polarity inversion
            (half the images), contrast (±50%), brightness (±20% of the range) and
            hue (±half the circle), in the value range of ``xs`` ([0, 1] or
            [0, 255], read from the data). ``"auto+appearance"`` is both. Each
            applies when ``xs`` is a batch of images (rank 4 with 1 to 4 channels,
            at least 8 pixels on a side), and is None for any other input (features,
            token ids). None turns it off; a callable is used as it is.
        xs: array. The source inputs.
        seed: int. Seed of the random layers.

    Returns:
        A callable on a batch of source inputs, or None.

    Raises:
        ValueError: an unknown name, or ``"appearance"`` on images whose values
            are in neither [0, 1] nor [0, 255].

    Examples:
    ```python
    import numpy as np
    from keras_transfer.adaptation import source_augmentation_for
    images = np.zeros((4, 28, 28, 1), "float32")
    assert source_augmentation_for("auto", images) is not None
    assert source_augmentation_for("appearance", images) is not None
    assert source_augmentation_for("default", images) is not None
    assert source_augmentation_for("default", images - 1.0) is None  # [-1, 0]
    assert source_augmentation_for("auto", np.zeros((4, 16), "float32")) is None
    assert source_augmentation_for(None, images) is None
    ```
    """
    if augmentation is None or callable(augmentation):
        return augmentation
    if augmentation not in SOURCE_AUGMENTATIONS:
        raise ValueError(
            f"Expected source_augmentation to be one of {SOURCE_AUGMENTATIONS}, None "
            "or a callable on a batch of source inputs. Received: "
            f"source_augmentation={augmentation!r}"
        )
    if not is_image_batch(xs):
        return None
    if augmentation == "default":
        try:
            value_range = _value_range(xs)
        except ValueError:  # an explicit "appearance" says so; the default skips
            return None
        augmentation = DEFAULT_SOURCE_AUGMENTATION
    elif "appearance" in augmentation:
        value_range = _value_range(xs)
    layers = []
    if augmentation in ("auto", "auto+appearance"):
        shift = AUTO_AUGMENTATION["translation"]
        layers += [
            keras.layers.RandomTranslation(shift, shift, seed=seed),
            keras.layers.RandomRotation(AUTO_AUGMENTATION["rotation"], seed=seed),
        ]
    if augmentation in ("appearance", "auto+appearance"):
        layers += _appearance_layers(value_range, xs.shape[-1], seed)
    name = augmentation.replace("+", "_")
    return keras.Sequential(layers, name=f"{name}_source_augmentation")


def is_image_batch(xs: Any) -> bool:
    """Whether the source jitter applies: rank 4, 1 to 4 channels, >= 8 px a side."""
    shape = getattr(xs, "shape", ())
    return len(shape) == 4 and 1 <= shape[-1] <= 4 and min(shape[1:3]) >= 8


def _value_range(xs: Any) -> tuple[float, float]:
    """[0, 1] or [0, 255], read from (a sample of) the source images.

    Image files (`ImageFiles`, decoded to uint8 from image files) are [0, 255]:
    nothing is decoded to say so.
    """
    from keras_transfer.data.folders import ImageFiles

    if isinstance(xs, ImageFiles):
        return (0.0, 255.0)
    sample = np.asarray(xs[:512], "float32")
    low, high = float(sample.min()), float(sample.max())
    if low >= 0.0 and high <= 1.0:
        return (0.0, 1.0)
    if low >= 0.0 and high <= 255.0:
        return (0.0, 255.0)
    raise ValueError(
        "Expected source images with values in [0, 1] or [0, 255] for "
        f"source_augmentation='appearance'. Received values in [{low:g}, {high:g}]; "
        "pass a callable that knows your images' range instead."
    )


def _appearance_layers(value_range: tuple, channels: int, seed: int) -> list:
    a = APPEARANCE_AUGMENTATION
    layers = [
        keras.layers.RandomInvert(a["invert"], value_range=value_range, seed=seed),
        keras.layers.RandomContrast(a["contrast"], value_range=value_range, seed=seed),
        keras.layers.RandomBrightness(
            a["brightness"], value_range=value_range, seed=seed
        ),
    ]
    if channels == 3:  # hue needs RGB
        layers.append(
            keras.layers.RandomHue(a["hue"], value_range=value_range, seed=seed)
        )
    return layers


def augment_source(pairs: Any, augmentation: Any) -> Any:
    """Applies ``augmentation`` to the source half of every batch of ``pairs``."""
    if augmentation is None:
        return pairs
    if not callable(augmentation):
        raise ValueError(
            "Expected source_augmentation to be a callable on a batch of source "
            f"inputs, or None. Received: source_augmentation={augmentation!r}"
        )
    import tensorflow as tf

    def apply(x, *rest):
        x = dict(x)
        out = augmentation(x["source"])
        x["source"] = tf.cast(out, x["target"].dtype)
        return (x, *rest)

    # One call at a time: the random layers draw from one seeded state, so parallel
    # calls would hand out the draws in a different order on every run (the same
    # seed gave target accuracies 0.71 and 0.81 in the demo). Prefetch keeps the
    # augmentation off the training step's path.
    return pairs.map(apply).prefetch(tf.data.AUTOTUNE)


def resolve_methods(method: Any, candidates: Any) -> list[str]:
    from keras_transfer.adaptation.methods import list_alignment_methods

    accepted = [*list_alignment_methods(), *_NO_TRAINING, "auto"]
    if method == "auto":
        names = list(candidates or AUTO_CANDIDATES)
    else:
        names = [method]
    for name in names:
        parts = split_method_name(name) if "+" in str(name) else [name]
        if any(part not in accepted or part in _NO_TRAINING for part in parts) and (
            len(parts) > 1 or name not in accepted
        ):
            raise ValueError(
                f"Expected method to be one of {accepted}, or alignment methods "
                f"joined with '+' (e.g. 'dann+mcc'). Received: method={name!r}"
            )
    if method == "auto" and "auto" in names:
        raise ValueError("candidates cannot contain 'auto'.")
    return names


def train_candidate(
    name,
    shared,
    pairs,
    *,
    remaining,
    warm_accuracy,
    lambda_max,
    method_kwargs,
    make_optimizer,
    jit_compile,
    warm_optimizer,
    source_validation,
    target,
    tolerance,
    callbacks,
    num_classes,
    verbose,
    fit_verbose,
    store,
):
    alignment = None if name in _NO_TRAINING else name
    kwargs = dict(METHOD_DEFAULTS.get(name, {}))
    kwargs.update(method_kwargs or {})
    kwargs.setdefault("lambda_", 1.0 if lambda_max is None else float(lambda_max))
    if alignment is not None and "+" in alignment:
        parts = build_parts(
            split_method_name(alignment), defaults=METHOD_DEFAULTS, **kwargs
        )
        method = CombinedAlignment(parts, name=alignment.replace("+", "_"))
    else:
        method = (
            None if alignment is None else get_alignment_method(alignment, **kwargs)
        )
    model = DomainAdaptationModel(
        shared.encoder,
        num_classes,
        classifier=shared.classifier,
        method=method,
        bottleneck=shared.bottleneck,
        name=f"adapt_{name.replace('+', '_')}",
    )
    controller = None
    history = keras.callbacks.History()
    history.history, history.epoch = {}, []
    if remaining:
        controller = AdaptationController(
            source_validation,
            warmup=0,
            lambda_max=kwargs["lambda_"] if method is not None else 0.0,
            tolerance=tolerance,
            num_classes=num_classes,
            verbose=verbose,
            label=name,
        )
        controller.best_warmup_accuracy = warm_accuracy
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
        carry_optimizer_state(model, warm_optimizer)
        estimators = []
        if class_weighted_parts(method):  # IWDAN / IWCDAN: weights from the model
            estimators.append(ClassWeightEstimator(source_validation, target))
        if store.done(name):
            history = store.load_phase(name, model, controller)
        else:
            history = model.fit(
                pairs,
                epochs=remaining,
                callbacks=[
                    controller,
                    *estimators,
                    *store.callbacks(name, controller),
                    *callbacks,
                ],
                verbose=fit_verbose,
                shuffle=False,
            )
            store.save_phase(name, model, controller, history)
    if name == "adabn":
        adapt_batchnorm(model, target)
    return model, history, controller


__all__ = [
    "APPEARANCE_AUGMENTATION",
    "AUTO_AUGMENTATION",
    "AUTO_CANDIDATES",
    "DEFAULT_SOURCE_AUGMENTATION",
    "METHOD_DEFAULTS",
    "SOURCE_AUGMENTATIONS",
    "augment_source",
    "is_image_batch",
    "source_augmentation_for",
    "resolve_methods",
    "train_candidate",
]
