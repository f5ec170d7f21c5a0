"""A small from-scratch text classifier, the no-transfer baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.data.pipelines import _check_batch_size
from keras_transfer.text.encoder import check_texts


def build_scratch_text_classifier(
    train_texts: Sequence[str],
    num_classes: int,
    *,
    sequence_length: int = 32,
    max_tokens: int = 5000,
    embedding_dim: int = 32,
    learning_rate: float = 1e-2,
) -> keras.Model:
    """Builds a bag-of-embeddings classifier learned from scratch (no pretraining).

    `TextVectorization` (vocabulary adapted on `train_texts`) -> `Embedding` ->
    masked average -> softmax. Words absent from `train_texts` map to the OOV token, so
    the model knows nothing about them: the baseline that transfer should beat.

    Args:
        train_texts: sequence of str. Texts the vocabulary is built from.
        num_classes: int. Number of classes (>= 2).
        sequence_length: int. Tokens per string. Defaults to 32.
        max_tokens: int. Vocabulary size cap. Defaults to 5000.
        embedding_dim: int. Embedding width. Defaults to 32.
        learning_rate: float. Adam learning rate. Defaults to 1e-2.

    Returns:
        A compiled `keras.Model` taking a `(batch,)` string tensor.

    Raises:
        ValueError: `num_classes < 2`.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(
            f"Expected num_classes to be an int. Received: {num_classes!r}"
        )
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Received: {num_classes}")
    vectorize = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        output_sequence_length=sequence_length,
        name="vectorize",
    )
    vectorize.adapt(tf.constant(list(train_texts)))
    inputs = keras.Input(shape=(), dtype="string", name="text")
    tokens = vectorize(inputs)
    x = keras.layers.Embedding(
        vectorize.vocabulary_size(), embedding_dim, mask_zero=True, name="embedding"
    )(tokens)
    x = keras.layers.GlobalAveragePooling1D(name="average")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(
        x
    )
    model = keras.Model(inputs, outputs, name="scratch_text_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def text_dataset(
    texts: Sequence[str],
    labels=None,
    *,
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 0,
) -> tf.data.Dataset:
    """A batched `tf.data.Dataset` of `(string, label)` pairs (or strings alone).

    Keras cannot `fit` on a numpy array of Python strings directly; this wraps them.

    Args:
        texts: sequence of str.
        labels: array-like or None. Integer labels.
        batch_size: int. Defaults to 16.
        shuffle: bool. Shuffle each epoch (seeded). Defaults to True.
        seed: int. Shuffle seed. Defaults to 0.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        ValueError: texts that are not one string per example (see
            `keras_transfer.text.encoder.check_texts`: bytes are decoded, a
            one-column array is flattened, anything else is refused), a number of
            labels other than the number of texts, or a batch size below 1.

    Examples:
    ```python
    from keras_transfer.text import text_dataset
    ds = text_dataset([b"good", "bad"], [1, 0], shuffle=False)
    x, y = next(iter(ds))
    assert x.numpy().tolist() == [b"good", b"bad"] and y.numpy().tolist() == [1, 0]
    ```
    """
    texts = check_texts(texts)
    _check_batch_size(batch_size)
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(texts):
            raise ValueError(
                f"Expected one label per text. Received {len(texts)} texts and "
                f"{len(labels)} labels."
            )
    texts = tf.constant(texts)
    ds = tf.data.Dataset.from_tensor_slices(
        texts if labels is None else (texts, tf.constant(labels))
    )
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
