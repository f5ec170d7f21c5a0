"""Text domain adaptation: the DANN machinery of `keras_transfer.adaptation` on text.

The encoder is a functional model from raw strings to a feature vector: a
`TextEncoder` (tokenizer + KerasHub backbone + average pooling) followed by a trainable
adapter (`Dense` + ReLU). Gradient reversal needs features that can move: with a
frozen backbone the adapter is what adapts; `unfreeze_depth` or `lora_rank` let the
backbone adapt too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer.text.classifier import make_text_encoder
from keras_transfer.text.encoder import check_pooling, check_texts


def build_text_encoder_model(
    backbone: Any,
    *,
    sequence_length: int = 128,
    unfreeze_depth: int | str = 0,
    lora_rank: int | None = None,
    pooling: str = "avg",
    adapter_units: int | None = 128,
    name: str = "text_feature_encoder",
) -> keras.Model:
    """A functional model: `(batch,)` strings -> `(batch, features)` floats.

    Args:
        backbone: str, LoadedBackbone or TextEncoder (see `build_text_classifier`).
        sequence_length: int. Tokens per string. Defaults to 128.
        unfreeze_depth: int or `"all"`. Top transformer blocks trained. Defaults to 0.
        lora_rank: int or None. LoRA adapters on a frozen backbone. Defaults to None.
        pooling: str. `"avg"`, `"cls"` or `"pooled"` (`"mean"`: deprecated alias
            of `"avg"`). Defaults to `"avg"`.
        adapter_units: int or None. Width of the trainable `Dense`+ReLU adapter on
            top of the pooled features; None for no adapter. Defaults to 128.
        name: str. Model name. Defaults to `"text_feature_encoder"`.

    Returns:
        A `keras.Model` whose `"text_encoder"` layer is the `TextEncoder`.

    Raises:
        ValueError: LoRA with `unfreeze_depth != 0`, or a bad backbone.
    """
    encoder = make_text_encoder(
        backbone,
        sequence_length=sequence_length,
        pooling=check_pooling(pooling, "build_text_encoder_model"),
        unfreeze_depth=unfreeze_depth,
        lora_rank=lora_rank,
    )
    inputs = keras.Input(shape=(), dtype="string", name="text")
    features = encoder(inputs)
    if adapter_units:
        features = keras.layers.Dense(adapter_units, activation="relu", name="adapter")(
            features
        )
    return keras.Model(inputs, features, name=name)


def build_text_dann(
    backbone: Any,
    num_classes: int,
    *,
    sequence_length: int = 128,
    unfreeze_depth: int | str = 0,
    lora_rank: int | None = None,
    adapter_units: int | None = 128,
    discriminator_units: Sequence[int] = (64,),
    lambda_: float = 1.0,
    learning_rate: float = 1e-3,
    compile: bool = True,
):
    """A DANN (Ganin et al. 2016) whose encoder reads raw strings.

    Train it with `text_domain_pairs(...)` batches and `model.fit`; schedule lambda
    with the callbacks of `keras_transfer.adaptation`; predict and export with
    `model.inference_model()` (strings in, probabilities out).

    Args:
        backbone: str, LoadedBackbone or TextEncoder, e.g. `"minilm"`.
        num_classes: int. Number of classes (>= 2).
        sequence_length: int. Tokens per string. Defaults to 128.
        unfreeze_depth: int or `"all"`. Top transformer blocks trained. Defaults to 0.
        lora_rank: int or None. LoRA adapters on a frozen backbone. Defaults to None.
        adapter_units: int or None. Trainable adapter width (see
            `build_text_encoder_model`). Defaults to 128.
        discriminator_units: sequence of int. Domain discriminator hidden sizes.
            Defaults to `(64,)`.
        lambda_: float. Gradient reversal strength. Defaults to 1.0.
        learning_rate: float. Adam learning rate. Defaults to 1e-3.
        compile: bool. Compile with Adam. Defaults to True.

    Returns:
        A `keras_transfer.adaptation.DANN`.

    Raises:
        ValueError: bad arguments.

    Examples:
    ```python
    from keras_transfer.datasets.text import sentiment_domains
    from keras_transfer.text.adaptation import build_text_dann, text_domain_pairs
    import tensorflow as tf
    source, target = sentiment_domains(num_train=16, num_test=4)
    dann = build_text_dann("minilm", 2, sequence_length=16)
    pairs = text_domain_pairs(source.x_train, source.y_train, target.x_train)
    dann.fit(pairs, epochs=1, verbose=0)
    probs = dann.inference_model().predict(tf.constant(list(target.x_test)))
    assert probs.shape == (4, 2)
    ```

    References:
        Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR.
    """
    from keras_transfer.adaptation import DANN

    encoder = build_text_encoder_model(
        backbone,
        sequence_length=sequence_length,
        unfreeze_depth=unfreeze_depth,
        lora_rank=lora_rank,
        adapter_units=adapter_units,
    )
    model = DANN(
        encoder,
        num_classes,
        discriminator_units=tuple(discriminator_units),
        lambda_=lambda_,
        name="text_dann",
    )
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def text_domain_pairs(
    source_texts: Sequence[str],
    source_labels: Any,
    target_texts: Sequence[str],
    *,
    batch_size: int = 16,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches `({"source": strings, "target": strings}, source_labels)` for DANN.

    Args:
        source_texts: sequence of str. Labelled source texts.
        source_labels: array-like of int. Their labels.
        target_texts: sequence of str. Unlabelled target texts.
        batch_size: int. Texts per domain per batch. Defaults to 16.
        seed: int. Shuffle seed. Defaults to 0.

    Returns:
        A `tf.data.Dataset` from `keras_transfer.data.pairs.domain_pairs`.
    """
    from keras_transfer.data.pairs import domain_pairs

    source = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(check_texts(source_texts, "source_texts")),
            tf.constant(source_labels),
        )
    )
    target = tf.data.Dataset.from_tensor_slices(
        tf.constant(check_texts(target_texts, "target_texts"))
    )
    return domain_pairs(source, target, batch_size, seed=seed)
