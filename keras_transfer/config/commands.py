"""The top-level config of each CLI command, and `TEMPLATES` (command -> schema).

Run commands (train, adapt, tune, distill, fewshot, pretrain) share `RunConfig`:
`name` and `runs_dir`, i.e. where `<runs_dir>/<name>/` is written. evaluate, export
and predict read a model file and write next to it, so they have no run directory.

Examples:
```python
from keras_transfer.config.commands import RunConfig, TrainConfig
cfg = TrainConfig(name="first")
assert isinstance(cfg, RunConfig) and cfg.runs_dir == "runs"
```
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_transfer.config._fields import option, section
from keras_transfer.config.library import (
    AugmentationSection,
    DistillationConfig,
    FewShotSection,
)
from keras_transfer.config.sections import (
    BACKBONE_KWARGS_HELP,
    AdaptationConfig,
    DataConfig,
    ModelConfig,
    PretrainSection,
    TrainingConfig,
    TuningConfig,
)

__all__ = [
    "TEMPLATES",
    "AdaptConfig",
    "DistillConfig",
    "EvaluateConfig",
    "ExportConfig",
    "FewShotCommandConfig",
    "PredictConfig",
    "PretrainConfig",
    "RunConfig",
    "TrainConfig",
    "TuneConfig",
    "run_name",
]

RUN_NAME_HELP = "Run name: results go to <runs_dir>/<name>/."


def run_name(default: str, help: str = RUN_NAME_HELP) -> str:
    """The `name` field of a run command, defaulting to the command's name."""
    return option(default, help)


@dataclass
class RunConfig:
    """The fields every run command shares: where its run directory goes.

    Args:
        name: str. Run name; results go to `<runs_dir>/<name>/`. Each command
            defaults it to its own name.
        runs_dir: str. Folder holding run directories. Defaults to "runs".
    """

    name: str = run_name("run")
    runs_dir: str = option("runs", "Folder holding run directories.")


@dataclass
class TrainConfig(RunConfig):
    """`keras-transfer train`: fine-tune a backbone on labelled images."""

    name: str = run_name("train")
    data: DataConfig = section(DataConfig)
    model: ModelConfig = section(ModelConfig)
    training: TrainingConfig = section(TrainingConfig)
    augmentation: AugmentationSection = section(AugmentationSection)


@dataclass
class AdaptConfig(RunConfig):
    """`keras-transfer adapt`: domain adaptation, labelled source -> unlabelled target.

    `target.source` may be unlabelled: a folder of images without class
    sub-folders, or a .npz with an array x only.
    """

    name: str = run_name("adapt")
    source: DataConfig = section(DataConfig)
    target: DataConfig = section(DataConfig, source="digits_target")
    model: ModelConfig = section(ModelConfig)
    adaptation: AdaptationConfig = section(AdaptationConfig)


@dataclass
class TuneConfig(RunConfig):
    """`keras-transfer tune`: hyperparameter search."""

    name: str = run_name("tune")
    data: DataConfig = section(DataConfig)
    model: ModelConfig = section(ModelConfig)
    tuning: TuningConfig = section(TuningConfig)


@dataclass
class DistillConfig(RunConfig):
    """`keras-transfer distill`: train a small student on a teacher's soft targets."""

    name: str = run_name("distill")
    data: DataConfig = section(DataConfig)
    distillation: DistillationConfig = section(DistillationConfig)
    seed: int = option(0, "Seed of weight initialization.")


@dataclass
class FewShotCommandConfig(RunConfig):
    """`keras-transfer fewshot`: N-way K-shot accuracy of an encoder (ProtoNet)."""

    name: str = run_name("fewshot")
    backbone: str = option(
        "keras_applications:MobileNetV3Small",
        "The encoder: a backbone spec or a .keras feature extractor or classifier "
        "(its head is removed; see `keras-transfer backbones`); its pooled features "
        "are the embeddings.",
    )
    backbone_kwargs: dict = option({}, BACKBONE_KWARGS_HELP)
    data: DataConfig = section(DataConfig)
    fewshot: FewShotSection = section(FewShotSection)


@dataclass
class PretrainConfig(RunConfig):
    """`keras-transfer pretrain`: train a backbone offline, save a KerasHub preset."""

    name: str = run_name(
        "pretrain",
        "Run name: results go to <runs_dir>/<name>/, the preset to "
        "<runs_dir>/<name>/preset (use it as model.backbone=keras_hub:<that dir>).",
    )
    data: DataConfig = section(DataConfig)
    pretrain: PretrainSection = section(PretrainSection)


@dataclass
class EvaluateConfig:
    """`keras-transfer evaluate`: metrics and a report for a saved model."""

    model_path: str = option(
        "runs/train/model.keras",
        "The model to evaluate: a .keras file, a .tflite file, or a TFLite or "
        "SavedModel export folder (evaluated through its own runtime).",
    )
    data: DataConfig = section(DataConfig, image_size=None)
    output: str = option("", "Report folder; empty means <model folder>/eval/.")


@dataclass
class ExportConfig:
    """`keras-transfer export`: SavedModel / TFLite, verified after writing."""

    model_path: str = option("runs/train/model.keras", "The .keras model to export.")
    format: str = option("tflite", "Output format.", choices=("tflite", "saved_model"))
    quantization: list = option(
        ["float32", "int8"],
        "TFLite quantizations to write: float32, float16, dynamic, int8, int8-full, "
        "int16x8.",
    )
    selective_size_budget: float | None = option(
        0.25,
        "For int8: how much larger than the full int8 file a file with some ops kept "
        "in float may be (0.25: +25%) before int16x8 is tried; null: no limit.",
    )
    min_agreement: float | None = option(
        None,
        "Top-1 agreement with the Keras model each file must reach on the "
        "verification inputs, in [0, 1]; null: 0.99 for int8, int16x8 and dynamic, "
        "0.999 for float32 and float16.",
    )
    representative: DataConfig = section(DataConfig, source="", image_size=None)
    output: str = option("", "Output folder; empty means <model folder>/export/.")
    overwrite: bool = option(False, "Replace existing outputs.")


@dataclass
class PredictConfig:
    """`keras-transfer predict`: class predictions for images or arrays."""

    model_path: str = option(
        "runs/train/model.keras",
        "The model: a .keras file, a .tflite file, or a TFLite or SavedModel export "
        "folder.",
    )
    inputs: str = option(
        "",
        "An image file, a folder of images (searched recursively), a .npz (x), or "
        "a built-in domain (digits, digits_target: its test split).",
    )
    image_size: int | None = option(
        None, "Images are resized to image_size x image_size; null: the model's."
    )
    class_names: list = option([], "Names of the classes; empty uses the run's names.")
    top_k: int = option(1, "How many classes to list per input.")
    output: str = option(
        "", "Write predictions to this .json or .csv; empty prints them."
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
