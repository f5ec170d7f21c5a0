"""Config schemas shared by the Python API, the YAML/JSON config files and the CLI.

Every schema is a dataclass whose fields carry their help text in
``field(metadata={"help": ...})``, so one definition drives validation, the commented
templates printed by ``keras-transfer config --template train`` and the docs. Nothing
here imports TensorFlow, so reading a config (and ``--help``) stays fast.

Modules:

* `sections`: the CLI run sections (`DataConfig`, `ModelConfig`, `TrainingConfig`,
  `AdaptationConfig`, `TuningConfig`, `PretrainSection`) and `QUANTIZATIONS`.
* `library`: the schemas the library takes as well, defined once for both:
  `AugmentationConfig` (`AugmentationSection` is its CLI subset),
  `DistillationConfig` (= `DistillationSection`), `FewShotConfig` (`FewShotSection`).
* `commands`: one top-level config per command, on the shared base `RunConfig`
  (`name`, `runs_dir`), and `TEMPLATES`.
* `validation`: `ConfigError`, `from_dict` (types and choices), `check_fields`
  and `check_pretrain_config` (value ranges).
* `files`: `load_config`, `apply_overrides`, `to_dict`, `template`.

Examples:
```python
from keras_transfer.config import TrainConfig, from_dict, apply_overrides
cfg = from_dict(TrainConfig, {"name": "demo", "training": {"epochs": 1}})
cfg = apply_overrides(cfg, ["training.learning_rate=1e-4"])
assert cfg.training.learning_rate == 1e-4
```
"""

from __future__ import annotations

from keras_transfer.config.commands import (
    TEMPLATES,
    AdaptConfig,
    DistillConfig,
    EvaluateConfig,
    ExportConfig,
    FewShotCommandConfig,
    PredictConfig,
    PretrainConfig,
    RunConfig,
    TrainConfig,
    TuneConfig,
)
from keras_transfer.config.files import apply_overrides, load_config, template, to_dict
from keras_transfer.config.library import (
    AugmentationConfig,
    AugmentationSection,
    DistillationConfig,
    DistillationSection,
    FewShotConfig,
    FewShotSection,
)
from keras_transfer.config.sections import (
    QUANTIZATIONS,
    AdaptationConfig,
    DataConfig,
    ModelConfig,
    PretrainSection,
    TrainingConfig,
    TuningConfig,
)
from keras_transfer.config.validation import (
    ConfigError,
    check_fields,
    check_pretrain_config,
    from_dict,
)

__all__ = [
    "QUANTIZATIONS",
    "TEMPLATES",
    "AdaptConfig",
    "AdaptationConfig",
    "AugmentationConfig",
    "AugmentationSection",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "DistillationConfig",
    "DistillationSection",
    "EvaluateConfig",
    "ExportConfig",
    "FewShotCommandConfig",
    "FewShotConfig",
    "FewShotSection",
    "ModelConfig",
    "PredictConfig",
    "PretrainConfig",
    "PretrainSection",
    "RunConfig",
    "TrainConfig",
    "TrainingConfig",
    "TuneConfig",
    "TuningConfig",
    "apply_overrides",
    "check_fields",
    "check_pretrain_config",
    "from_dict",
    "load_config",
    "template",
    "to_dict",
]
