"""`build_text_classifier`: raw strings in, class probabilities out (KerasHub)."""

from __future__ import annotations

import warnings
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.compiling import compile_model
from keras_transfer.freezing import count_params, set_trainable, transformer_blocks
from keras_transfer.text.encoder import TextEncoder, check_pooling

# count_params and transformer_blocks live in `freezing` (one home); they stay
# importable from here and from keras_transfer.text.
__all__ = [
    "build_text_classifier",
    "count_params",
    "load_text_backbone",
    "make_text_encoder",
    "set_text_trainable",
    "transformer_blocks",
]


def load_text_backbone(spec: Any, *, sequence_length: int = 128, **backbone_kwargs):
    """Loads a text backbone and its preprocessor for `TextEncoder`.

    Args:
        spec: str or LoadedBackbone. `"minilm"`, `"keras_hub:<preset or dir>"`, any
            spec `keras_transfer.load_backbone` accepts that gives a text backbone, or a
            `LoadedBackbone` with a preprocessor.
        sequence_length: int. Tokens per string (longer strings are truncated).
            Defaults to 128.
        **backbone_kwargs: Passed to `load_backbone` with a spec string (e.g.
            `load_weights=False` for a `keras_hub:` preset); refused otherwise.

    Returns:
        `(backbone, preprocessor)`.

    Raises:
        ValueError: the spec is not a text backbone or has no preprocessor.
        MissingExtraError: `"minilm"` without its weights package.
    """
    from keras_transfer.backbones import LoadedBackbone, load_backbone

    if not isinstance(sequence_length, int) or sequence_length < 2:
        raise ValueError(
            "Expected sequence_length to be an int >= 2. "
            f"Received: sequence_length={sequence_length!r}"
        )
    if backbone_kwargs and not isinstance(spec, str):
        raise ValueError(
            "Expected backbone keyword arguments only with a spec string (they are "
            "passed to load_backbone); a LoadedBackbone or TextEncoder is used as it "
            f"is. Received: {sorted(backbone_kwargs)} with a {type(spec).__name__}"
        )
    if isinstance(spec, LoadedBackbone):
        loaded = spec
    elif isinstance(spec, str):
        try:
            loaded = load_backbone(
                spec, sequence_length=sequence_length, **backbone_kwargs
            )
        except TypeError as err:  # e.g. a keras.applications image model
            if "sequence_length" not in str(err):
                raise
            raise ValueError(
                f"Expected a text backbone spec (e.g. 'minilm' or "
                f"'keras_hub:<preset>'). Received: {spec!r}, whose loader takes no "
                "sequence_length: not a text backbone (image backbones go to "
                "keras_transfer.build_classifier)."
            ) from err
    else:
        raise ValueError(
            "Expected a text backbone spec string (e.g. 'minilm' or "
            "'keras_hub:<preset>') or a LoadedBackbone with a preprocessor. "
            f"Received: {type(spec).__name__}"
        )
    if loaded.modality != "text" or loaded.preprocessor is None:
        raise ValueError(
            f"Expected a text backbone with a tokenizer/preprocessor. Received spec "
            f"{loaded.spec!r} with modality={loaded.modality!r} and "
            f"preprocessor={type(loaded.preprocessor).__name__}."
        )
    limit = getattr(loaded.model, "max_sequence_length", None)
    if limit is not None and sequence_length > limit:
        raise ValueError(
            f"Expected sequence_length <= {limit}, the longest sequence the backbone "
            f"{loaded.spec!r} has position embeddings for. "
            f"Received: sequence_length={sequence_length}"
        )
    if hasattr(loaded.preprocessor, "sequence_length"):
        loaded.preprocessor.sequence_length = sequence_length
    return loaded.model, loaded.preprocessor


def _apply_policy(encoder: TextEncoder, unfreeze_depth: int | str) -> None:
    # The one trainable policy (freezing.set_trainable: transformer blocks are the
    # units, everything above the lowest unfrozen block trains); a BERT pooler the
    # encoder's pooling ignores stays frozen (TextEncoder.unused_backbone_layers).
    set_trainable(encoder, unfreeze_depth, recompile=False)


def set_text_trainable(encoder: TextEncoder, unfreeze_depth: int | str) -> None:
    """Deprecated: use `keras_transfer.set_trainable(model_or_encoder, depth)`.

    Kept for one release. Applies the shared trainable policy to the encoder's
    backbone (`0`: frozen, `N`: the top N transformer blocks and what lies above
    them, `"all"`: everything) and keeps an unused BERT pooler frozen.

    Args:
        encoder: TextEncoder.
        unfreeze_depth: int or `"all"`.

    Raises:
        ValueError: `unfreeze_depth` is not an int in [0, number of blocks] or
            `"all"`.
    """
    warnings.warn(
        "keras_transfer.text.set_text_trainable is deprecated and will be removed in "
        "the next release: use keras_transfer.set_trainable(model, unfreeze_depth) "
        "(it recompiles the model) or set_trainable(encoder, unfreeze_depth).",
        DeprecationWarning,
        stacklevel=2,
    )
    _apply_policy(encoder, unfreeze_depth)


def _default_learning_rate(unfreeze_depth: Any, lora_rank: int | None) -> float:
    # Picked on the synthetic sentiment data (benchmarks/text.py), 2 epochs.
    if lora_rank:
        return 3e-3
    if unfreeze_depth == 0:
        return 5e-3
    return 1e-4 if unfreeze_depth == "all" else 2e-4


def make_text_encoder(
    backbone: Any,
    *,
    sequence_length: int,
    pooling: str,
    unfreeze_depth: Any,
    lora_rank: int | None,
    backbone_kwargs: dict | None = None,
) -> TextEncoder:
    """Builds (or reuses) a `TextEncoder` with its trainable policy and LoRA applied.

    Shared by `build_text_classifier` and the text DANN builder. `pooling` is
    checked by the caller (`check_pooling`), so a deprecated value warns once, at
    the caller's line; `backbone_kwargs` go to `load_text_backbone`.

    Raises:
        ValueError: an invalid `lora_rank`, or LoRA with `unfreeze_depth != 0`.
    """
    if lora_rank is not None:
        if (
            isinstance(lora_rank, bool)
            or not isinstance(lora_rank, int)
            or lora_rank < 1
        ):
            raise ValueError(
                f"Expected lora_rank to be None or an int >= 1. Received: {lora_rank!r}"
            )
        if unfreeze_depth != 0:
            raise ValueError(
                "LoRA trains adapters on a frozen backbone: pass unfreeze_depth=0 "
                f"with lora_rank. Received: unfreeze_depth={unfreeze_depth!r}, "
                f"lora_rank={lora_rank}"
            )
    if isinstance(backbone, TextEncoder):
        if backbone_kwargs:
            load_text_backbone(backbone, **backbone_kwargs)  # raises: names them
        encoder = backbone
    else:
        model, preprocessor = load_text_backbone(
            backbone, sequence_length=sequence_length, **(backbone_kwargs or {})
        )
        encoder = TextEncoder(model, preprocessor, pooling=pooling, name="text_encoder")
    _apply_policy(encoder, unfreeze_depth)
    if lora_rank is not None:
        encoder.backbone.enable_lora(lora_rank)
    return encoder


def build_text_classifier(
    backbone: Any,
    num_classes: int,
    *,
    sequence_length: int = 128,
    unfreeze_depth: int | str = 0,
    lora_rank: int | None = None,
    pooling: str = "avg",
    dropout: float = 0.1,
    multi_label: bool = False,
    learning_rate: float | None = None,
    backbone_learning_rate: float | None = None,
    compile: bool = True,
    strategy: Any = None,
    name: str | None = None,
    **backbone_kwargs: Any,
) -> keras.Model:
    """Builds a text classifier: raw strings in, class probabilities out.

    Args:
        backbone: str, LoadedBackbone or TextEncoder. `"minilm"` (offline
            all-MiniLM-L6-v2), `"keras_hub:<preset or dir>"`, a `LoadedBackbone`, or
            an existing `TextEncoder` (shared, e.g. with an `embed` call).
        num_classes: int. Number of classes (>= 2 unless `multi_label`).
        sequence_length: int. Tokens per string. Defaults to 128.
        unfreeze_depth: int or `"all"`. Transformer blocks trained, counted from the
            top; `0` trains only the head, `"all"` everything. Defaults to 0.
        lora_rank: int or None. When set, freezes the backbone and adds LoRA adapters
            of this rank (KerasHub `backbone.enable_lora`) to the attention query and
            value projections; needs `unfreeze_depth=0`. Defaults to None.
        pooling: str. `"avg"`, `"cls"` or `"pooled"` (see `TextEncoder`;
            `"mean"` is a deprecated alias of `"avg"`). Defaults to `"avg"`.
        dropout: float. Dropout before the head. Defaults to 0.1.
        multi_label: bool. Sigmoid outputs and binary crossentropy. Defaults to False.
        learning_rate: float or None. Adam learning rate; None picks 5e-3 for a
            frozen backbone, 3e-3 with LoRA, 2e-4 with top-N blocks unfrozen and
            1e-4 for `"all"`.
        backbone_learning_rate: float or None. A separate (usually lower) learning
            rate for the backbone's variables (discriminative fine-tuning, see
            `compile_model`); None: the backbone uses `learning_rate`. Defaults to
            None.
        compile: bool. Compile with `compile_model`'s defaults: Adam, sparse
            categorical crossentropy and accuracy (multi-label: binary
            crossentropy, accuracy and AUC). Defaults to True.
        strategy: A `tf.distribute.Strategy`, a strategy name (see
            `get_strategy`), or None. The model is built and compiled inside its
            scope. Defaults to None.
        name: str or None. Model name.
        **backbone_kwargs: Passed to `load_backbone` with a spec string (e.g.
            `load_weights=False` for a `keras_hub:` preset).

    Returns:
        A `keras.Model` taking a `(batch,)` string tensor. Its layer `"text_encoder"`
        is the `TextEncoder`, its attribute `backbone` the encoder's backbone (so
        `set_trainable(model, depth)` and `fine_tune` work on it) and
        `compile_recipe` the compile arguments; `count_params(model)` gives
        trainable vs total.

    Raises:
        ValueError: bad `num_classes`, `unfreeze_depth`, `lora_rank`, `pooling`,
            learning rate or backbone, or backbone keyword arguments with a
            backbone that is not a spec string.
        MissingExtraError: `"minilm"` without its weights package.

    Examples:
    ```python
    import tensorflow as tf
    from keras_transfer.text import build_text_classifier, count_params
    model = build_text_classifier("minilm", 2, sequence_length=32, lora_rank=4)
    print(count_params(model))  # trainable 228,098 of 22,936,706
    probs = model(tf.constant(["Great pasta!", "The battery died."]))
    assert probs.shape == (2, 2)
    ```
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(
            f"Expected num_classes to be an int. Received: {num_classes!r}"
        )
    if num_classes < (1 if multi_label else 2):
        raise ValueError(
            "Expected num_classes >= 2 (or >= 1 with multi_label=True). "
            f"Received: num_classes={num_classes}"
        )
    pooling = check_pooling(pooling, "build_text_classifier")
    from keras_transfer.distribute import maybe_distribute

    with maybe_distribute(strategy):
        encoder = make_text_encoder(
            backbone,
            sequence_length=sequence_length,
            pooling=pooling,
            unfreeze_depth=unfreeze_depth,
            lora_rank=lora_rank,
            backbone_kwargs=backbone_kwargs,
        )
        inputs = keras.Input(shape=(), dtype="string", name="text")
        x = encoder(inputs)
        if dropout:
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        activation = "sigmoid" if multi_label else "softmax"
        outputs = keras.layers.Dense(
            num_classes, activation=activation, dtype="float32", name="predictions"
        )(x)
        model = keras.Model(inputs, outputs, name=name or "text_classifier")
        model.backbone = encoder.backbone  # explicit, as keras-hub's Task.backbone
        if compile:
            if learning_rate is None:
                learning_rate = _default_learning_rate(unfreeze_depth, lora_rank)
            compile_model(
                model,
                learning_rate=learning_rate,
                backbone_learning_rate=backbone_learning_rate,
                multi_label=multi_label,
            )
    return model
