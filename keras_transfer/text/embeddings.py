"""Sentence embeddings, and zero-shot classification by cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.text.encoder import TextEncoder
from keras_transfer.text.encoder import check_texts as _check_texts

_ENCODERS: dict[tuple[str, int], TextEncoder] = {}


def get_text_encoder(
    backbone: Any = "minilm", *, sequence_length: int = 128, normalize: bool = True
) -> TextEncoder:
    """Returns an average-pooling `TextEncoder` for `backbone`, cached for spec strings.

    Args:
        backbone: str, LoadedBackbone or TextEncoder. Defaults to `"minilm"`.
        sequence_length: int. Tokens per string. Defaults to 128.
        normalize: bool. L2-normalize the vectors. Defaults to True.

    Returns:
        A `TextEncoder` (the same object for repeated calls with the same spec).
    """
    from keras_transfer.text.classifier import load_text_backbone

    if isinstance(backbone, TextEncoder):
        return backbone
    key = (backbone, sequence_length, normalize) if isinstance(backbone, str) else None
    if key is not None and key in _ENCODERS:
        return _ENCODERS[key]
    model, preprocessor = load_text_backbone(backbone, sequence_length=sequence_length)
    encoder = TextEncoder(model, preprocessor, pooling="avg", normalize=normalize)
    if key is not None:
        _ENCODERS[key] = encoder
    return encoder


def embed(
    texts: Sequence[str],
    backbone: Any = "minilm",
    *,
    sequence_length: int = 128,
    batch_size: int = 32,
) -> np.ndarray:
    """Embeds sentences: mean pooling over non-padding tokens, then L2 normalization.

    This is what sentence-transformers does for all-MiniLM-L6-v2, so the cosine
    similarity of two vectors is their dot product.

    Args:
        texts: sequence of str. The sentences.
        backbone: str, LoadedBackbone or TextEncoder. Defaults to `"minilm"`.
        sequence_length: int. Tokens per string. Defaults to 128.
        batch_size: int. Strings per forward pass. Defaults to 32.

    Returns:
        `float32` array of shape `(len(texts), hidden_dim)`, rows of unit norm.

    Raises:
        ValueError: `texts` is a single string or empty.
        MissingExtraError: `"minilm"` without its weights package.

    Examples:
    ```python
    from keras_transfer.text import embed
    texts = ["A cat sits.", "A kitten is sitting.", "Stock prices fell."]
    a, b, c = embed(texts, sequence_length=32)
    assert a @ b > a @ c
    ```
    """
    texts = _check_texts(texts)
    encoder = get_text_encoder(backbone, sequence_length=sequence_length)
    if not encoder.normalize:
        raise ValueError("Expected a TextEncoder with normalize=True for embed().")
    chunks = [
        keras.ops.convert_to_numpy(
            encoder(tf.constant(texts[i : i + batch_size]), training=False)
        )
        for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(chunks).astype("float32")


@dataclass
class ZeroShotResult:
    """Zero-shot predictions.

    Attributes:
        labels: list of str. The predicted label of each text.
        indices: np.ndarray. Index into the candidate labels, `int64` of shape `(n,)`.
        scores: np.ndarray. Cosine similarity of each text to each label's
            sentence, shape `(n, num_labels)`.
    """

    labels: list[str]
    indices: np.ndarray
    scores: np.ndarray


def zero_shot_classify(
    texts: Sequence[str],
    labels: Sequence[str],
    template: str = "This text is about {}.",
    backbone: Any = "minilm",
    *,
    sequence_length: int = 128,
    batch_size: int = 32,
) -> ZeroShotResult:
    """Classifies texts with no training: the label whose sentence is most similar.

    Each label is put in `template` ("This text is about {}."), embedded, and every
    text goes to the label of highest cosine similarity.

    Args:
        texts: sequence of str. Texts to classify.
        labels: sequence of str. Candidate labels (>= 2), e.g. `["sports", "food"]`.
        template: str. Sentence with one `{}` for the label.
            Defaults to `"This text is about {}."`.
        backbone: str, LoadedBackbone or TextEncoder. Defaults to `"minilm"`.
        sequence_length: int. Tokens per string. Defaults to 128.
        batch_size: int. Strings per forward pass. Defaults to 32.

    Returns:
        A `ZeroShotResult` (`labels`, `indices`, `scores`).

    Raises:
        ValueError: fewer than 2 labels, or a template without `{}`.

    Examples:
    ```python
    from keras_transfer.text import zero_shot_classify
    texts = ["The striker scored twice.", "Simmer the sauce for an hour."]
    result = zero_shot_classify(texts, ["sports", "cooking"], sequence_length=32)
    assert result.labels == ["sports", "cooking"]
    ```
    """
    labels = _check_texts(labels, "labels")
    if len(labels) < 2:
        raise ValueError(f"Expected at least 2 labels. Received: labels={labels!r}")
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(
            "Expected template to be a string with one '{}' for the label. "
            f"Received: template={template!r}"
        )
    kwargs = {"sequence_length": sequence_length, "batch_size": batch_size}
    text_vectors = embed(texts, backbone, **kwargs)
    label_vectors = embed([template.format(x) for x in labels], backbone, **kwargs)
    scores = text_vectors @ label_vectors.T
    indices = np.argmax(scores, axis=1)
    return ZeroShotResult([labels[i] for i in indices], indices, scores)
