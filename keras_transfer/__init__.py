"""keras-transfer: transfer learning for Keras 3 on TensorFlow.

The public API is imported lazily: ``import keras_transfer`` is cheap, and TensorFlow
is loaded the first time a name that needs it is used (so ``keras-transfer --help``
stays fast). Every public name is listed in ``__all__``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from keras_transfer.version import __version__  # noqa: F401

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

if "keras" in sys.modules:  # Keras is loaded already: registering with it is free
    try:
        from keras_transfer import _backend  # noqa: F401 - installs the stand-ins
    except ImportError:  # another backend: refused when a name is first used
        pass

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "adapt": "keras_transfer.adaptation",
    "AdaptConfig": "keras_transfer.config",
    "AdaptResult": "keras_transfer.adaptation",
    "AugmentationConfig": "keras_transfer.augment",
    "build_augmentation": "keras_transfer.augment",
    "build_classifier": "keras_transfer.builders",
    "build_multitask": "keras_transfer.multitask",
    "build_regressor": "keras_transfer.builders",
    "build_text_classifier": "keras_transfer.text",
    "DANN": "keras_transfer.adaptation",
    "Distiller": "keras_transfer.distillation",
    "domain_pairs": "keras_transfer.data",
    "DomainAdaptationModel": "keras_transfer.adaptation",
    "embed": "keras_transfer.text",
    "export_main": "keras_transfer.export",
    "export_saved_model": "keras_transfer.export",
    "export_tflite": "keras_transfer.export",
    "ExportReport": "keras_transfer.export",
    "feature_extractor": "keras_transfer.backbones",
    "find_backbone": "keras_transfer.freezing",
    "fine_tune": "keras_transfer.finetune",
    "get_strategy": "keras_transfer.distribute",
    "GradientReversal": "keras_transfer.layers",
    "list_backbone_schemes": "keras_transfer.backbones",
    "load_backbone": "keras_transfer.backbones",
    "load_config": "keras_transfer.config",
    "load_model": "keras_transfer.saving",
    "load_tflite": "keras_transfer.export",
    "LoadedBackbone": "keras_transfer.backbones",
    "make_tuner": "keras_transfer.tuning",
    "maybe_distribute": "keras_transfer.distribute",
    "mix_dataset": "keras_transfer.augment",
    "PreciseBatchNorm": "keras_transfer.normalization",
    "ProtoNetClassifier": "keras_transfer.fewshot",
    "register_backbone_loader": "keras_transfer.backbones",
    "reptile": "keras_transfer.fewshot",
    "save_model": "keras_transfer.saving",
    "set_batchnorm_momentum": "keras_transfer.normalization",
    "set_trainable": "keras_transfer.freezing",
    "strip_augmentation": "keras_transfer.augment",
    "trainable_summary": "keras_transfer.freezing",
    "TrainConfig": "keras_transfer.config",
    "TransferHyperModel": "keras_transfer.tuning",
    "TuneConfig": "keras_transfer.config",
    "zero_shot_classify": "keras_transfer.text",
}

# Subpackages reachable as attributes (keras_transfer.data, keras_transfer.layers, ...).
# The CLI is not among them: the library never imports its front door (import
# keras_transfer.cli for main, run_train, run_adapt and run_tune).
_SUBMODULES = {
    "adaptation",
    "augment",
    "backbones",
    "builders",
    "config",
    "data",
    "datasets",
    "demo",
    "distillation",
    "distribute",
    "export",
    "fewshot",
    "finetune",
    "freezing",
    "heads",
    "layers",
    "multitask",
    "progress",
    "reports",
    "runs",
    "saving",
    "text",
    "tuning",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"keras_transfer.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_transfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
