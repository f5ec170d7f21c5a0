"""Config schemas shared by the Python API, the YAML/JSON config files and the CLI.

Every schema is a dataclass whose fields carry their help text in
``field(metadata={"help": ...})``, so one definition drives validation, the commented
templates printed by ``keras-transfer config --template train`` and the docs.

Examples:
```python
from keras_transfer.config import TrainConfig, from_dict, apply_overrides
cfg = from_dict(TrainConfig, {"name": "demo", "training": {"epochs": 1}})
cfg = apply_overrides(cfg, ["training.learning_rate=1e-4"])
assert cfg.training.learning_rate == 1e-4
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import yaml

__all__ = [
    "AdaptConfig",
    "AdaptationConfig",
    "AugmentationSection",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "DistillationSection",
    "EvaluateConfig",
    "ExportConfig",
    "FewShotCommandConfig",
    "FewShotSection",
    "ModelConfig",
    "PredictConfig",
    "PretrainConfig",
    "PretrainSection",
    "TEMPLATES",
    "TrainConfig",
    "TrainingConfig",
    "TuneConfig",
    "TuningConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
    "template",
    "to_dict",
]


class ConfigError(ValueError):
    """An invalid config: names the field, the value received and what is accepted."""


def _f(default: Any, help: str, choices: tuple | None = None, **kw: Any) -> Any:
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta, **kw)


#: TFLite/SavedModel quantization modes: the one list the CLI and `keras_transfer.export`
#: share (this module imports no TensorFlow, so the CLI can read it cheaply).
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int8-full")


# ----------------------------------------------------------------------------- schemas
@dataclass
class DataConfig:
    """Where examples come from and how they are batched."""

    source: str = _f(
        "digits",
        "'digits' or 'digits_target' (built-in demo domains), a folder of images "
        "with one sub-folder per class, or a .npz file with arrays x, y (or x_train, "
        "y_train, x_test, y_test; optional class_names).",
    )
    validation_source: str | None = _f(
        None,
        "Optional separate validation data (same forms as source). When null, the "
        "built-in domains use their test split and others hold out validation_split.",
    )
    image_size: int | None = _f(
        32,
        "Images are resized to image_size x image_size. evaluate/export: null "
        "(the default there) uses the model's input size.",
    )
    batch_size: int = _f(32, "Examples per batch.")
    validation_split: float = _f(0.2, "Fraction held out for validation, in [0, 1).")
    limit: int | None = _f(
        None, "Use at most this many training examples (quick runs)."
    )
    seed: int = _f(0, "Seed of splits and shuffling.")
    skip_corrupt: bool = _f(
        False,
        "Skip unreadable image files (counted and named in the log) instead of "
        "stopping at the first one.",
    )


@dataclass
class ModelConfig:
    """The backbone and the head put on it."""

    backbone: str = _f(
        "keras_applications:MobileNetV3Small",
        "Backbone spec ('keras_hub:<preset>', 'tfhub:<handle or dir>', "
        "'saved_model:<dir>', 'keras_applications:<Name>') or a path to a .keras "
        "file holding a feature extractor. See `keras-transfer backbones`.",
    )
    backbone_kwargs: dict = _f({}, "Extra keyword arguments of the backbone loader.")
    num_classes: int | None = _f(
        None, "Number of classes; null infers it from the data (checked against it)."
    )
    head: str = _f("linear", "Classification head.", choices=("linear", "mlp"))
    head_units: int = _f(256, "Hidden units of the 'mlp' head.")
    dropout: float = _f(0.2, "Dropout before the last layer, in [0, 1).")
    train_batchnorm: bool = _f(False, "Let BatchNorm layers update when unfrozen.")


@dataclass
class TrainingConfig:
    """Two-phase fine-tuning: train the head, then unfreeze the top of the backbone."""

    epochs: int = _f(3, "Epochs of head training (backbone frozen).")
    learning_rate: float = _f(1e-3, "Learning rate of head training.")
    fine_tune_epochs: int = _f(0, "Epochs after unfreezing (0 skips this phase).")
    fine_tune_learning_rate: float = _f(1e-4, "Learning rate after unfreezing.")
    unfreeze_depth: int | str = _f(
        "all", "Layers unfrozen for fine-tuning: an int N (top N) or 'all'."
    )
    seed: int = _f(0, "Seed of weight initialization.")
    cache_features: bool | str = _f(
        "auto",
        "Frozen phases train the head on backbone features computed once: 'auto' "
        "(when exact: no augmentation, MixUp/CutMix or trainable layer before the "
        "head), true (or fail saying why not), false.",
        choices=("auto", True, False),
    )


@dataclass
class AdaptationConfig:
    """Unsupervised domain adaptation from labelled source to unlabelled target.

    Runs `keras_transfer.adapt`: source warm-up, λ ramp, collapse guard, and with
    ``method: auto`` the candidates ranked by an unsupervised score.
    """

    method: str = _f(
        "auto",
        "Adaptation method: auto, source_only, adabn, or a registered alignment "
        "method (dann, cdan, coral, mmd, mcc, entropy, bnm, self_training).",
    )
    epochs: int = _f(20, "Training epochs in total (warm-up included).")
    learning_rate: float = _f(1e-3, "Adam learning rate.")
    lambda_max: float = _f(1.0, "Largest weight of the alignment loss (λ ramp end).")
    unfreeze_depth: int | str | None = _f(
        "all",
        "Encoder layers trained during adaptation: an int N (top N), 'all', or null "
        "(keep the backbone's own trainable flags).",
    )
    candidates: list | None = _f(
        None, "Methods tried by method=auto (null: the library's default list)."
    )
    selector: str = _f(
        "dev",
        "Unsupervised score ranking auto's candidates.",
        choices=("snd", "entropy", "im", "dev"),
    )
    warmup: int | str = _f(
        "auto", "Source warm-up epochs: 'auto' (until accuracy plateaus) or an int."
    )
    bottleneck_units: int | None = _f(
        256, "Width of the normalised bottleneck (null: none)."
    )
    options: dict = _f({}, "Extra keyword arguments of the adaptation method.")


@dataclass
class TuningConfig:
    """A KerasTuner search over learning rate and unfreeze depth."""

    tuner: str = _f(
        "random", "Search algorithm.", choices=("random", "hyperband", "bayesian")
    )
    max_trials: int = _f(4, "Number of trials (random/bayesian).")
    epochs: int = _f(2, "Epochs per trial.")
    learning_rates: list = _f([1e-3, 1e-4], "Learning rates to try.")
    unfreeze_depths: list = _f([0, 2], "Unfreeze depths to try (ints or 'all').")
    objective: str = _f("val_accuracy", "Metric to maximize.")


@dataclass
class AugmentationSection:
    """Training-only augmentation and regularisation (off by default).

    The CLI-facing subset of `keras_transfer.augment.AugmentationConfig` (same field
    names, defaults and help; tests check they agree): kept here so reading a config
    imports no TensorFlow. Image layers go inside the model and are stripped from
    the saved model.keras; MixUp/CutMix mix the training batches.
    """

    flip: str = _f(
        "none",
        "Random flips.",
        choices=("none", "horizontal", "vertical", "horizontal_and_vertical"),
    )
    rotation: float = _f(
        0.0, "Random rotation, as a fraction of a full turn (0 = off)."
    )
    zoom: float = _f(0.0, "Random zoom factor in [0, 1) (0 = off).")
    translation: float = _f(
        0.0, "Random shift, as a fraction of height/width (0 = off)."
    )
    contrast: float = _f(0.0, "Random contrast factor in [0, 1] (0 = off).")
    randaugment: bool = _f(False, "Apply keras.layers.RandAugment.")
    randaugment_ops: int = _f(2, "RandAugment: operations per image.")
    randaugment_factor: float = _f(0.5, "RandAugment: magnitude in [0, 1].")
    mixup_alpha: float = _f(
        0.0, "MixUp Beta(alpha, alpha) in the data pipeline (0 = off)."
    )
    cutmix: float = _f(0.0, "CutMix Beta factor in the data pipeline (0 = off).")
    label_smoothing: float = _f(0.0, "Label smoothing in [0, 1) (0 = off).")
    weight_decay: float = _f(0.0, "Decoupled weight decay, AdamW (0 = off).")


@dataclass
class TrainConfig:
    """`keras-transfer train`: fine-tune a backbone on labelled images."""

    name: str = _f("train", "Run name: results go to <runs_dir>/<name>/.")
    runs_dir: str = _f("runs", "Folder holding run directories.")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    augmentation: AugmentationSection = field(default_factory=AugmentationSection)


@dataclass
class AdaptConfig:
    """`keras-transfer adapt`: domain adaptation (e.g. DANN) source -> target."""

    name: str = _f("adapt", "Run name: results go to <runs_dir>/<name>/.")
    runs_dir: str = _f("runs", "Folder holding run directories.")
    source: DataConfig = field(default_factory=DataConfig)
    target: DataConfig = field(
        default_factory=lambda: DataConfig(source="digits_target")
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)


@dataclass
class TuneConfig:
    """`keras-transfer tune`: hyperparameter search."""

    name: str = _f("tune", "Run name: results go to <runs_dir>/<name>/.")
    runs_dir: str = _f("runs", "Folder holding run directories.")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass
class EvaluateConfig:
    """`keras-transfer evaluate`: metrics and a report for a saved model."""

    model_path: str = _f("runs/train/model.keras", "The .keras model to evaluate.")
    data: DataConfig = field(default_factory=lambda: DataConfig(image_size=None))
    output: str = _f("", "Report folder; empty means <model folder>/eval/.")


@dataclass
class ExportConfig:
    """`keras-transfer export`: SavedModel / TFLite, verified after writing."""

    model_path: str = _f("runs/train/model.keras", "The .keras model to export.")
    format: str = _f("tflite", "Output format.", choices=("tflite", "saved_model"))
    quantization: list = _f(
        ["float32", "int8"],
        "TFLite quantizations to write: float32, float16, dynamic, int8.",
    )
    representative: DataConfig = field(
        default_factory=lambda: DataConfig(source="", image_size=None)
    )
    output: str = _f("", "Output folder; empty means <model folder>/export/.")
    overwrite: bool = _f(False, "Replace existing outputs.")


@dataclass
class PredictConfig:
    """`keras-transfer predict`: class predictions for images or arrays."""

    model_path: str = _f(
        "runs/train/model.keras",
        "The model: a .keras file, a .tflite file, or a TFLite or SavedModel export "
        "folder.",
    )
    inputs: str = _f(
        "", "An image file, a folder of images (searched recursively) or a .npz (x)."
    )
    image_size: int | None = _f(
        None, "Images are resized to image_size x image_size; null: the model's."
    )
    class_names: list = _f([], "Names of the classes; empty uses the run's names.")
    top_k: int = _f(1, "How many classes to list per input.")
    output: str = _f("", "Write predictions to this .json or .csv; empty prints them.")


@dataclass
class DistillationSection:
    """Knowledge distillation of a teacher .keras model into a small student.

    Same fields as `keras_transfer.distillation.DistillationConfig`.
    """

    teacher: str = _f("", "Path of the trained teacher model (.keras file).")
    student: str = _f(
        "",
        "Backbone spec or .keras feature extractor of the (smaller) student; a "
        "classifier head is added. Empty: a small built-in CNN.",
    )
    student_kwargs: dict = _f(
        {}, "Extra keyword arguments of the student's backbone loader."
    )
    temperature: float = _f(
        4.0, "Softmax temperature T for soft targets (> 0); loss x T^2."
    )
    alpha: float = _f(
        0.1,
        "Weight of the hard-label loss in [0, 1]; the soft-target loss gets 1 - alpha.",
    )
    epochs: int = _f(10, "Epochs of distillation.")
    learning_rate: float = _f(1e-3, "Adam learning rate of the student.")


@dataclass
class DistillConfig:
    """`keras-transfer distill`: train a small student on a teacher's soft targets."""

    name: str = _f("distill", "Run name: results go to <runs_dir>/<name>/.")
    runs_dir: str = _f("runs", "Folder holding run directories.")
    data: DataConfig = field(default_factory=DataConfig)
    distillation: DistillationSection = field(default_factory=DistillationSection)
    seed: int = _f(0, "Seed of weight initialization.")


@dataclass
class FewShotSection:
    """Episodic N-way K-shot evaluation with prototypes (ProtoNet, no training)."""

    n_way: int = _f(5, "Classes per episode (N).")
    k_shot: int = _f(5, "Support examples per class.")
    n_query: int = _f(5, "Query examples per class.")
    eval_episodes: int = _f(200, "Evaluation episodes (for the 95% CI).")
    seed: int = _f(0, "Seed of episode sampling.")


@dataclass
class FewShotCommandConfig:
    """`keras-transfer fewshot`: N-way K-shot accuracy of an encoder (ProtoNet)."""

    name: str = _f("fewshot", "Run name: results go to <runs_dir>/<name>/.")
    runs_dir: str = _f("runs", "Folder holding run directories.")
    backbone: str = _f(
        "keras_applications:MobileNetV3Small",
        "The encoder: a backbone spec or a .keras feature extractor (see "
        "`keras-transfer backbones`); its pooled features are the embeddings.",
    )
    backbone_kwargs: dict = _f({}, "Extra keyword arguments of the backbone loader.")
    data: DataConfig = field(default_factory=DataConfig)
    fewshot: FewShotSection = field(default_factory=FewShotSection)


@dataclass
class PretrainSection:
    """A small KerasHub VGG backbone trained from scratch on the labelled data."""

    architecture: str = _f("vgg", "Backbone architecture.", choices=("vgg",))
    filters: list = _f(
        [32, 64, 128], "Convolution filters per stage (each stage halves the size)."
    )
    repeats: list = _f([1, 1, 1], "Convolutions per stage (one entry per filters).")
    epochs: int = _f(30, "Training epochs.")
    learning_rate: float = _f(1e-3, "Adam learning rate.")
    augment: bool = _f(
        True,
        "Random inversion and colour jitter of the training images (features that "
        "survive colour and background changes transfer better).",
    )
    seed: int = _f(0, "Seed of weight initialization and shuffling.")


@dataclass
class PretrainConfig:
    """`keras-transfer pretrain`: train a backbone offline, save a KerasHub preset."""

    name: str = _f(
        "pretrain",
        "Run name: results go to <runs_dir>/<name>/, the preset to "
        "<runs_dir>/<name>/preset (use it as model.backbone=keras_hub:<that dir>).",
    )
    runs_dir: str = _f("runs", "Folder holding run directories.")
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainSection = field(default_factory=PretrainSection)


def check_pretrain_config(cfg: PretrainConfig) -> None:
    """Checks the numeric fields of a `PretrainConfig` (no data is read).

    Raises:
        ConfigError: a field out of range, named `pretrain.<field>`.
    """
    p = cfg.pretrain
    ints = lambda v: all(isinstance(i, int) and not isinstance(i, bool) for i in v)  # noqa: E731
    rules = (
        (
            "filters",
            bool(p.filters) and ints(p.filters) and min(p.filters) >= 1,
            "a non-empty list of ints >= 1",
        ),
        (
            "repeats",
            len(p.repeats) == len(p.filters)
            and ints(p.repeats)
            and min(p.repeats, default=0) >= 1,
            f"a list of {len(p.filters)} ints >= 1 (one per pretrain.filters entry)",
        ),
        ("epochs", p.epochs >= 1, "an int >= 1"),
        ("learning_rate", p.learning_rate > 0, "a float > 0"),
    )
    for name, ok, accepted in rules:
        if not ok:
            raise ConfigError(
                f"Invalid value for pretrain.{name}: expected {accepted}. "
                f"Received: pretrain.{name}={getattr(p, name)!r}"
            )


TEMPLATES: dict[str, type] = {
    "train": TrainConfig,
    "adapt": AdaptConfig,
    "tune": TuneConfig,
    "evaluate": EvaluateConfig,
    "export": ExportConfig,
    "predict": PredictConfig,
    "distill": DistillConfig,
    "fewshot": FewShotCommandConfig,
    "pretrain": PretrainConfig,
}


# --------------------------------------------------------------------------- machinery
def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    args = typing.get_args(tp)
    if args and (typing.get_origin(tp) in (Union, types.UnionType)):
        return " or ".join(_type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def _check_value(path: str, tp: Any, value: Any, choices: tuple | None) -> Any:
    """Checks `value` against the type hint `tp`; returns it (ints widen to float)."""
    accepted = _type_name(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _check_value(path, option, value, choices)
            except ConfigError:
                continue
        raise ConfigError(
            f"Invalid value for {path}: expected {accepted}. Received: {path}={value!r}"
        )
    if tp is type(None):
        ok = value is None
    elif tp is float:
        if isinstance(value, str) and _looks_like_float(value):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(
            f"Invalid value for {path}: expected {accepted}. "
            f"Received: {path}={value!r} ({type(value).__name__})"
        )
    if choices is not None and value not in choices:
        raise ConfigError(
            f"Invalid value for {path}: expected one of {list(choices)}. "
            f"Received: {path}={value!r}"
        )
    return value


def from_dict(cls: type, data: dict | None, _prefix: str = "") -> Any:
    """Builds the dataclass `cls` from a (nested) dict, validating every field.

    Args:
        cls: type. A config dataclass such as `TrainConfig`.
        data: dict or None. Field values; missing fields keep their defaults.

    Returns:
        An instance of `cls`.

    Raises:
        ConfigError: an unknown field, or a value of the wrong type or not among the
            accepted choices; the message names the field path and the value.
    """
    data = {} if data is None else data
    where = _prefix.rstrip(".") or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(
            f"Expected {where} to be a mapping of fields. Received: {data!r}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown field {_prefix}{unknown[0]} in {where}. Accepted fields: "
            f"{', '.join(fields)}. Received: {_prefix}{unknown[0]}={data[unknown[0]]!r}"
        )
    values = {}
    for name, value in data.items():
        tp, path = hints[name], f"{_prefix}{name}"
        if dataclasses.is_dataclass(tp):
            if isinstance(value, dict):  # start from the field's own default
                value = {**dataclasses.asdict(_default(fields[name])), **value}
            values[name] = from_dict(tp, value, f"{path}.")
        else:
            choices = fields[name].metadata.get("choices")
            values[name] = _check_value(path, tp, value, choices)
    return cls(**values)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def to_dict(config: Any) -> dict:
    """Returns the config as plain nested dicts (for YAML/JSON)."""
    return dataclasses.asdict(config)


def load_config(cls: type, path: str | os.PathLike | None, overrides=()) -> Any:
    """Reads a YAML or JSON file into `cls` and applies `key.path=value` overrides.

    Args:
        cls: type. The config dataclass.
        path: str or None. A .yaml/.yml/.json file; None starts from the defaults.
        overrides: iterable of str. `"training.learning_rate=1e-4"` items; values are
            parsed as YAML scalars/lists.

    Returns:
        A validated instance of `cls`.

    Raises:
        ConfigError: the file is missing or unparsable, or a field is invalid.
    """
    data: dict = {}
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ConfigError(f"Config file not found. Received: config={path!r}")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as err:
            raise ConfigError(f"Could not parse config file {path!r}: {err}") from err
        data = data or {}
    data = _merge_overrides(data, overrides)
    return from_dict(cls, data)


def _merge_overrides(data: dict, overrides) -> dict:
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                "Expected an override of the form key.path=value "
                f"(e.g. training.learning_rate=1e-4). Received: {item!r}"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_like_float(value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Cannot set {key}: {part} is not a section.")
        node[parts[-1]] = value
    return data


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def apply_overrides(config: Any, overrides) -> Any:
    """Returns a validated copy of `config` with `key.path=value` overrides applied."""
    return from_dict(type(config), _merge_overrides(to_dict(config), overrides))


def template(kind: str) -> str:
    """Returns a commented YAML starting config for `kind` (train, adapt, ...).

    Raises:
        ConfigError: `kind` is not one of `TEMPLATES`.
    """
    if kind not in TEMPLATES:
        raise ConfigError(
            f"Unknown template {kind!r}. Accepted: {', '.join(TEMPLATES)}."
        )
    cls = TEMPLATES[kind]
    lines = [f"# keras-transfer {kind} config. {cls.__doc__.splitlines()[0]}"]
    lines.append(f"# Run: keras-transfer {kind} this.yaml [--set section.field=value]")
    _template_lines(cls(), lines, indent="")
    return "\n".join(lines) + "\n"


def _template_lines(obj: Any, lines: list, indent: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").splitlines()[0]
            lines.append(f"{indent}{f.name}:  # {doc}")
            _template_lines(value, lines, indent + "  ")
            continue
        help_text = f.metadata.get("help", "")
        if "choices" in f.metadata:
            help_text += f" One of: {', '.join(map(str, f.metadata['choices']))}."
        dumped = yaml.safe_dump({f.name: value}, default_flow_style=True, width=1000)
        dumped = dumped.strip()[1:-1]  # drop the braces of the flow mapping
        for line in textwrap.wrap(help_text, 86 - len(indent)):
            lines.append(f"{indent}# {line}")
        lines.append(f"{indent}{dumped}")
