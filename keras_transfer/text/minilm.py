"""The offline pretrained all-MiniLM-L6-v2 (the backbone spec "minilm").

The loader lives in `keras_transfer.backbones.minilm` (backbones never import text);
this module keeps the names importable from `keras_transfer.text`.
"""

from keras_transfer.backbones.minilm import (
    MINILM_INSTALL,
    MINILM_PACKAGE,
    MINILM_SPEC,
    MissingExtraError,
    load_minilm,
    minilm_path,
    register_minilm,
)

__all__ = [
    "MINILM_INSTALL",
    "MINILM_PACKAGE",
    "MINILM_SPEC",
    "MissingExtraError",
    "load_minilm",
    "minilm_path",
    "register_minilm",
]
