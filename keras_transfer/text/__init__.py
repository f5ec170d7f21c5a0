"""Text transfer: KerasHub text encoders, offline MiniLM, LoRA, embeddings, zero-shot.

The `"minilm"` backbone spec is registered by `keras_transfer.backbones` itself.
"""

from keras_transfer.text.baseline import build_scratch_text_classifier, text_dataset
from keras_transfer.text.classifier import (
    build_text_classifier,
    count_params,
    load_text_backbone,
    set_text_trainable,
    transformer_blocks,
)
from keras_transfer.text.embeddings import (
    ZeroShotResult,
    embed,
    get_text_encoder,
    zero_shot_classify,
)
from keras_transfer.text.encoder import TextEncoder
from keras_transfer.text.minilm import (
    MINILM_INSTALL,
    MissingExtraError,
    load_minilm,
    minilm_path,
    register_minilm,
)

__all__ = [
    "MINILM_INSTALL",
    "MissingExtraError",
    "TextEncoder",
    "ZeroShotResult",
    "build_scratch_text_classifier",
    "build_text_classifier",
    "count_params",
    "embed",
    "get_text_encoder",
    "load_minilm",
    "load_text_backbone",
    "minilm_path",
    "register_minilm",
    "set_text_trainable",
    "text_dataset",
    "transformer_blocks",
    "zero_shot_classify",
]
