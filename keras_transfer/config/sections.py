"""The sections of the CLI run configs: data, model, training, adaptation, tuning.

Sections the library takes as well (augmentation, distillation, few-shot) live in
`keras_transfer.config.library`. No TensorFlow is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_transfer.config._fields import option

__all__ = [
    "QUANTIZATIONS",
    "AdaptationConfig",
    "DataConfig",
    "ModelConfig",
    "PretrainSection",
    "TrainingConfig",
    "TuningConfig",
]

#: TFLite/SavedModel quantization modes: the one list the CLI and `keras_transfer.export`
#: share (this module imports no TensorFlow, so the CLI can read it cheaply).
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int8-full", "int16x8")

BACKBONE_KWARGS_HELP = "Extra keyword arguments of the backbone loader."


@dataclass
class DataConfig:
    """Where examples come from and how they are batched."""

    source: str = option(
        "digits",
        "'digits' or 'digits_target' (built-in demo domains), a folder of images "
        "with one sub-folder per class, or a .npz file with arrays x, y (or x_train, "
        "y_train, x_test, y_test; optional class_names).",
    )
    validation_source: str | None = option(
        None,
        "Optional separate validation data (same forms as source; all or some of "
        "its classes, matched by name); when set, every "
        "example of a folder or x/y .npz source trains. When null, the built-in "
        "domains use their test split and others hold out validation_split.",
    )
    image_size: int | None = option(
        32,
        "Images are resized to image_size x image_size. evaluate/export: null "
        "(the default there) uses the model's input size.",
    )
    batch_size: int = option(32, "Examples per batch.")
    validation_split: float = option(
        0.2,
        "Fraction held out for validation, in [0, 1) (not with validation_source).",
    )
    limit: int | None = option(
        None,
        "Use at most this many training examples, and at most this many validation "
        "examples (quick runs; `evaluate` on the full data can then differ).",
    )
    seed: int = option(0, "Seed of splits and shuffling.")
    skip_corrupt: bool = option(
        False,
        "Skip unreadable image files (counted and named in the log) instead of "
        "stopping at the first one.",
    )
    stream: bool | str = option(
        "auto",
        "Image folders: 'auto' keeps a folder on disk and decodes it batch by "
        "batch when its decoded images pass 512 MiB (smaller ones are read into "
        "memory), true always streams it (for a machine with little memory), "
        "false always reads it into memory.",
        choices=("auto", True, False),
    )


@dataclass
class ModelConfig:
    """The backbone and the head put on it."""

    backbone: str = option(
        "keras_applications:MobileNetV3Small",
        "Backbone spec ('keras_hub:<preset>', 'tfhub:<handle or dir>', "
        "'saved_model:<dir>', 'keras_applications:<Name>') or a path to a .keras "
        "file: a feature extractor, or a classifier an earlier run wrote (its head "
        "is removed). See `keras-transfer backbones`.",
    )
    backbone_kwargs: dict = option({}, BACKBONE_KWARGS_HELP)
    num_classes: int | None = option(
        None, "Number of classes; null infers it from the data (checked against it)."
    )
    pooling: str | None = option(
        None,
        "How the backbone's feature maps become features: 'avg' or 'max' (global "
        "pooling), 'flatten' (every position kept: for small maps, e.g. 32-px "
        "images, where a global pool loses the layout) or 'auto' (flatten maps of "
        "at most 4x4 positions, average-pool larger ones); null: the command's "
        "default ('auto' for adapt, 'avg' for train and tune). See "
        "docs/domain_adaptation.md, 'Pooling of the encoder'.",
        choices=(None, "auto", "avg", "max", "flatten"),
    )
    head: str = option(
        "linear",
        "Classification head (train, tune; adapt puts its bottleneck and a linear "
        "head on the features).",
        choices=("linear", "mlp"),
    )
    head_units: int = option(256, "Hidden units of the 'mlp' head (train, tune).")
    dropout: float = option(
        0.2, "Dropout before the last layer, in [0, 1) (train, tune)."
    )
    train_batchnorm: bool | str = option(
        "auto",
        "Let the backbone's BatchNorm layers train when unfrozen: 'auto' trains "
        "those whose statistics have never been trained (a backbone without "
        "pretrained weights) and keeps pretrained ones frozen (the keras.io rule); "
        "true trains all, false freezes all.",
        choices=("auto", True, False),
    )
    batchnorm_momentum: float | str | None = option(
        "auto",
        "Momentum of the backbone's BatchNorm layers (train, tune): 'auto' gives "
        "those that have never been trained (a backbone without pretrained "
        "weights) 0.9 instead of a higher one, so the saved model's statistics "
        "follow its weights; a float in [0, 1) sets every one; null keeps theirs. "
        "adapt: adaptation.batchnorm_momentum.",
    )


@dataclass
class TrainingConfig:
    """Two-phase fine-tuning: train the head, then unfreeze the top of the backbone."""

    epochs: int = option(3, "Epochs of head training (backbone frozen).")
    learning_rate: float = option(1e-3, "Learning rate of head training.")
    fine_tune_epochs: int = option(0, "Epochs after unfreezing (0 skips this phase).")
    fine_tune_learning_rate: float = option(1e-4, "Learning rate after unfreezing.")
    unfreeze_depth: int | str = option(
        "all", "Layers unfrozen for fine-tuning: an int N (top N) or 'all'."
    )
    seed: int = option(0, "Seed of weight initialization.")
    cache_features: bool | str = option(
        "auto",
        "Frozen phases train the head on backbone features computed once: 'auto' "
        "(when exact: no augmentation, MixUp/CutMix or trainable layer before the "
        "head), true (or fail saying why not), false.",
        choices=("auto", True, False),
    )
    jit_compile: bool | str = option(
        "auto",
        "XLA-compiled training steps: 'auto' (Keras' choice: on a GPU, off on a "
        "CPU, where it measured slower), true or false. See docs/performance.md.",
        choices=("auto", True, False),
    )
    recompute_batchnorm: bool | str = option(
        "auto",
        "After the last phase, set trained BatchNorm layers' statistics to their "
        "average over the training data (precise BatchNorm): 'auto' (when "
        "model.train_batchnorm: auto trained BatchNorm that had never been "
        "trained), true, false. See docs/batchnorm.md.",
        choices=("auto", True, False),
    )
    mixed_precision: str | None = option(
        None,
        "Backbone compute dtype: null (float32), 'mixed_float16' (GPU; adds loss "
        "scaling) or 'mixed_bfloat16'. The head, loss and outputs stay float32.",
        choices=(None, "mixed_float16", "mixed_bfloat16"),
    )


@dataclass
class AdaptationConfig:
    """Unsupervised domain adaptation from labelled source to unlabelled target.

    Runs `keras_transfer.adapt`: source warm-up, λ ramp, collapse guard, and with
    ``method: auto`` the candidates ranked by an unsupervised score.
    """

    method: str = option(
        "auto",
        "Adaptation method: auto, source_only, adabn, or a registered alignment "
        "method (dann, cdan, coral, mmd, mcc, entropy, bnm, self_training; "
        "iwdan, iwcdan: class-weighted DANN/CDAN for a target whose classes are "
        "imbalanced).",
    )
    epochs: int = option(20, "Training epochs in total (warm-up included).")
    learning_rate: float = option(1e-3, "Adam learning rate.")
    lambda_max: float = option(
        1.0, "Largest weight of the alignment loss (λ ramp end)."
    )
    unfreeze_depth: int | str | None = option(
        "all",
        "Encoder layers trained during adaptation: an int N (top N), 'all', or null "
        "(keep the backbone's own trainable flags).",
    )
    candidates: list | None = option(
        None, "Methods tried by method=auto (null: the library's default list)."
    )
    selector: str = option(
        "ensv_rv",
        "Unsupervised score ranking auto's candidates ('ensv' needs several "
        "candidates: it compares each with their mean prediction; 'rv' trains a "
        "fresh model on each candidate's target pseudo-labels and scores it on the "
        "source; 'ensv_rv', the default, is ensv among the candidates whose rv is "
        "at least half the best), or 'ensemble': keep that mean itself, one model averaging the "
        "candidates whose source accuracy held (one forward pass per member), or "
        "'soup': one model holding the mean of those candidates' weights.",
        choices=(
            "snd",
            "entropy",
            "im",
            "dev",
            "ensv",
            "rv",
            "ensv_rv",
            "ensemble",
            "soup",
        ),
    )
    warmup: int | str = option(
        "auto", "Source warm-up epochs: 'auto' (until accuracy plateaus) or an int."
    )
    bottleneck_units: int | None = option(
        256, "Width of the normalised bottleneck (null: none)."
    )
    source_augmentation: str | None = option(
        "default",
        "Random changes of the source training images: 'default' (the recipe's: "
        "'appearance' for images with values in [0, 1] or [0, 255], nothing "
        "otherwise), 'appearance' (polarity inversion, contrast, brightness, hue; "
        "for targets of other colours or contrast), 'auto' (translation ±10% and "
        "rotation ±0.1 turn; for targets that may be tilted or shifted), "
        "'auto+appearance' (both), 'choose' (method auto only: run auto with "
        "'default' and with 'auto+appearance', keep the run whose candidates agree "
        "more; twice the cost) or null (off). See docs/domain_adaptation.md.",
        choices=("default", "auto", "appearance", "auto+appearance", "choose", None),
    )
    options: dict = option({}, "Extra keyword arguments of the adaptation method.")
    jit_compile: bool | str = option(
        "auto",
        "XLA-compiled training steps: 'auto' (Keras' choice: on a GPU, off on a "
        "CPU), true or false.",
        choices=("auto", True, False),
    )
    mixed_precision: str | None = option(
        None,
        "Backbone compute dtype: null (float32), 'mixed_float16' (GPU; adds loss "
        "scaling) or 'mixed_bfloat16'. The bottleneck, heads, losses and outputs "
        "stay float32.",
        choices=(None, "mixed_float16", "mixed_bfloat16"),
    )
    batchnorm_momentum: float | None = option(
        0.9,
        "Momentum the backbone's trainable BatchNormalization layers use while "
        "adapting (Keras' 0.99 lags the weights by epochs on small data); each "
        "layer's own is kept in the saved model. null: keep theirs. See "
        "docs/domain_adaptation.md, 'An encoder with BatchNormalization'.",
    )
    target_batchnorm: bool | str = option(
        "auto",
        "After adapting, re-estimate the saved model's trained BatchNormalization "
        "statistics on the target images (AdaBN; no label): 'auto' when the "
        "bottleneck is the only BatchNorm that trained (a backbone without "
        "BatchNorm, or with frozen pretrained BatchNorm), true also for the "
        "backbone's own trainable BatchNorm, false keeps the training batches' "
        "averages. See "
        "docs/domain_adaptation.md, 'BatchNorm statistics re-estimated on the "
        "target after adapting'.",
        choices=("auto", True, False),
    )
    domain_batchnorm: bool = option(
        False,
        "Domain-specific batch statistics while adapting (DSBN): source and "
        "target batches go through the network separately, each normalised by its "
        "own statistics; every candidate is then re-estimated on the target images "
        "before it is scored and saved (needs target_batchnorm auto or true). See "
        "docs/domain_adaptation.md, 'Domain-specific batch statistics while "
        "training'.",
    )
    on_low_agreement: str = option(
        "soup",
        "What method=auto saves when its candidates agree with its choice on less "
        "than 90% of the target (the low-agreement warning): 'soup' (one model "
        "holding the mean of the eligible candidates' weights) or 'keep' (the "
        "selector's choice). See docs/domain_adaptation.md, 'A soup of the "
        "candidates'.",
        choices=("soup", "keep"),
    )


@dataclass
class TuningConfig:
    """A KerasTuner search over learning rate and unfreeze depth."""

    tuner: str = option(
        "random", "Search algorithm.", choices=("random", "hyperband", "bayesian")
    )
    max_trials: int = option(4, "Number of trials (random/bayesian).")
    epochs: int = option(2, "Epochs per trial.")
    learning_rates: list = option([1e-3, 1e-4], "Learning rates to try.")
    unfreeze_depths: list = option([0, 2], "Unfreeze depths to try (ints or 'all').")
    objective: str = option(
        "val_accuracy",
        "Metric the search optimizes (what every trial logs): val_accuracy or "
        "accuracy, maximized; val_loss or loss, minimized.",
        choices=("val_accuracy", "val_loss", "accuracy", "loss"),
    )
    retrain_epochs: int = option(
        0,
        "After the search, train the best hyperparameters afresh for this many "
        "epochs on the training split (`tuning.retrain_best`) and save that model; "
        "0 keeps the best trial's model (trained for `epochs`).",
    )


@dataclass
class PretrainSection:
    """A small KerasHub VGG backbone trained from scratch on the labelled data."""

    architecture: str = option("vgg", "Backbone architecture.", choices=("vgg",))
    filters: list = option(
        [32, 64, 128], "Convolution filters per stage (each stage halves the size)."
    )
    repeats: list | None = option(
        None,
        "Convolutions per stage, one entry per filters entry; null: one per stage.",
    )
    epochs: int = option(30, "Training epochs.")
    learning_rate: float = option(1e-3, "Adam learning rate.")
    augment: bool = option(
        True,
        "Random inversion and colour jitter of the training images (features that "
        "survive colour and background changes transfer better).",
    )
    augment_warmup: float = option(
        0.3,  # pretrain.AUGMENT_WARMUP (not imported: config loads no TensorFlow)
        "With augment: the share of jittered images rises from 0 in the first epoch "
        "to all after this fraction of the epochs, in [0, 1); 0 jitters all from the "
        "start (fully jittered from step 0 the network sat at chance for ~12 of 30 "
        "epochs on digits; benchmarks/pretrain_augmentation.py).",
    )
    seed: int = option(0, "Seed of weight initialization and shuffling.")
