"""The candidates of `adapt`: which methods to train and how one branch is trained.

`adapt` (pipeline.py) warms up once and calls `train_candidate` for each method
it branches from the warm-up: the method built with `METHOD_DEFAULTS` (a ``+`` name
builds a `CombinedAlignment`), a fresh optimizer that continues with the warm-up's
state, the `AdaptationController` ramp and guard, and the resumable backup.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.adaptation.batchnorm import adapt_batchnorm
from keras_transfer.adaptation.combined import (
    CombinedAlignment,
    build_parts,
    split_method_name,
)
from keras_transfer.adaptation.methods import get_alignment_method
from keras_transfer.adaptation.model import DomainAdaptationModel
from keras_transfer.adaptation.recipe import AdaptationController
from keras_transfer.adaptation.result import carry_optimizer_state

#: Methods "auto" tries by default (branched from one shared warm-up).
AUTO_CANDIDATES = ("mcc", "cdan")
#: Default constructor arguments of each method inside `adapt`.
METHOD_DEFAULTS: dict[str, dict] = {
    "dann": {"hidden_units": (1024, 1024), "dropout": 0.5},
    "cdan": {"hidden_units": (1024, 1024), "dropout": 0.5},
}
_NO_TRAINING = ("source_only", "adabn")


def augment_source(pairs: Any, augmentation: Any) -> Any:
    """Applies ``augmentation`` to the source half of every batch of ``pairs``."""
    if augmentation is None:
        return pairs
    if not callable(augmentation):
        raise ValueError(
            "Expected source_augmentation to be a callable on a batch of source "
            f"inputs, or None. Received: source_augmentation={augmentation!r}"
        )
    import tensorflow as tf

    def apply(x, *rest):
        x = dict(x)
        out = augmentation(x["source"])
        x["source"] = tf.cast(out, x["target"].dtype)
        return (x, *rest)

    return pairs.map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def resolve_methods(method: Any, candidates: Any) -> list[str]:
    from keras_transfer.adaptation.methods import list_alignment_methods

    accepted = [*list_alignment_methods(), *_NO_TRAINING, "auto"]
    if method == "auto":
        names = list(candidates or AUTO_CANDIDATES)
    else:
        names = [method]
    for name in names:
        parts = split_method_name(name) if "+" in str(name) else [name]
        if any(part not in accepted or part in _NO_TRAINING for part in parts) and (
            len(parts) > 1 or name not in accepted
        ):
            raise ValueError(
                f"Expected method to be one of {accepted}, or alignment methods "
                f"joined with '+' (e.g. 'dann+mcc'). Received: method={name!r}"
            )
    if method == "auto" and "auto" in names:
        raise ValueError("candidates cannot contain 'auto'.")
    return names


def train_candidate(
    name,
    shared,
    pairs,
    *,
    remaining,
    warm_accuracy,
    lambda_max,
    method_kwargs,
    make_optimizer,
    jit_compile,
    warm_optimizer,
    source_validation,
    target,
    tolerance,
    callbacks,
    num_classes,
    verbose,
    fit_verbose,
    store,
):
    alignment = None if name in _NO_TRAINING else name
    kwargs = dict(METHOD_DEFAULTS.get(name, {}))
    kwargs.update(method_kwargs or {})
    kwargs.setdefault("lambda_", 1.0 if lambda_max is None else float(lambda_max))
    if alignment is not None and "+" in alignment:
        parts = build_parts(
            split_method_name(alignment), defaults=METHOD_DEFAULTS, **kwargs
        )
        method = CombinedAlignment(parts, name=alignment.replace("+", "_"))
    else:
        method = (
            None if alignment is None else get_alignment_method(alignment, **kwargs)
        )
    model = DomainAdaptationModel(
        shared.encoder,
        num_classes,
        classifier=shared.classifier,
        method=method,
        bottleneck=shared.bottleneck,
        name=f"adapt_{name.replace('+', '_')}",
    )
    controller = None
    history = keras.callbacks.History()
    history.history, history.epoch = {}, []
    if remaining:
        controller = AdaptationController(
            source_validation,
            warmup=0,
            lambda_max=kwargs["lambda_"] if method is not None else 0.0,
            tolerance=tolerance,
            num_classes=num_classes,
            verbose=verbose,
        )
        controller.best_warmup_accuracy = warm_accuracy
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
        carry_optimizer_state(model, warm_optimizer)
        if store.done(name):
            history = store.load_phase(name, model, controller)
        else:
            history = model.fit(
                pairs,
                epochs=remaining,
                callbacks=[controller, *store.callbacks(name, controller), *callbacks],
                verbose=fit_verbose,
                shuffle=False,
            )
            store.save_phase(name, model, controller, history)
    if name == "adabn":
        adapt_batchnorm(model, target)
    return model, history, controller


__all__ = [
    "AUTO_CANDIDATES",
    "METHOD_DEFAULTS",
    "augment_source",
    "resolve_methods",
    "train_candidate",
]
