"""Combined alignment: several methods' losses added in one training step.

The UDA literature rarely uses one loss alone: CDAN+MCC and DANN+MCC are the
strongest rows of the MCC paper (Jin et al. 2020), BNM is reported on top of DANN and
CDAN, and TLlib composes them the same way. `CombinedAlignment` adds the losses of its
parts; every part keeps its own schedulable ``lambda_`` (so `AdaptationController` and
`DomainLambdaScheduler` ramp all of them together). A name joined with ``+`` (e.g.
``method="dann+mcc"``) builds one.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.adaptation.methods import AlignmentMethod

ops = keras.ops


def _accepted(cls: type, key: str) -> bool:
    parameters = inspect.signature(cls.__init__).parameters
    return key in parameters


def split_method_name(name: str) -> list[str]:
    """``"dann+mcc"`` → ``["dann", "mcc"]`` (lower case, stripped)."""
    return [part.strip().lower() for part in str(name).split("+")]


def build_parts(
    names: Sequence[str], defaults: dict[str, dict] | None = None, **kwargs: Any
) -> list[AlignmentMethod]:
    """Builds the parts of a combination by name.

    Each keyword argument goes to every part whose constructor takes it (``lambda_``
    to all of them); ``defaults`` maps a part's name to its own default arguments.

    Raises:
        ValueError: For an unknown part, a repeated part, fewer than two parts, or a
            keyword no part accepts.
    """
    from keras_transfer.adaptation.methods import _METHODS, list_alignment_methods

    names = [n.lower() for n in names]
    accepted = list_alignment_methods()
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            "Expected two or more different method names joined with '+' (e.g. "
            f"'dann+mcc'). Received: method={'+'.join(names)!r}"
        )
    unknown = [n for n in names if n not in accepted]
    if unknown:
        raise ValueError(
            f"Expected every part of a combined method to be one of {accepted}. "
            f"Received: method={'+'.join(names)!r} (unknown: {unknown})"
        )
    classes = [_METHODS[n] for n in names]
    for key in kwargs:
        if not any(_accepted(cls, key) for cls in classes):
            raise ValueError(
                f"No part of method={'+'.join(names)!r} takes the argument {key!r}."
            )
    parts = []
    for name, cls in zip(names, classes, strict=True):
        own = dict((defaults or {}).get(name, {}))
        own.update({k: v for k, v in kwargs.items() if _accepted(cls, k)})
        parts.append(cls(name=name, **own))
    return parts


@keras.saving.register_keras_serializable(package="keras_transfer")
class CombinedAlignment(AlignmentMethod):
    """Adds the alignment losses of several methods.

    Args:
        methods: sequence of `AlignmentMethod` instances or registered names (two or
            more). Names are built with their defaults.
        **kwargs: Layer keyword arguments.

    The logged ``domain_loss`` is the sum of the parts' unweighted losses; the
    logged accuracy is the first adversarial part's discriminator accuracy.

    Examples:

    ```python
    import numpy as np
    from keras_transfer.adaptation import CombinedAlignment

    method = CombinedAlignment(["dann", "mcc"])
    method.build(((None, 8), (None, 3)))
    fs, ft = np.ones((4, 8), "float32"), np.zeros((4, 8), "float32")
    ls, lt = np.ones((4, 3), "float32"), np.eye(4, 3, dtype="float32")
    add, logged, accuracy = method.alignment_loss(fs, ft, ls, lt, training=False)
    assert float(add) > 0 and accuracy is not None
    method.lambda_ = 0.5
    assert [part.lambda_ for part in method.parts] == [0.5, 0.5]
    ```
    """

    def __init__(self, methods: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from keras_transfer.adaptation.methods import get_alignment_method

        parts = []
        for method in methods:
            if isinstance(method, dict):
                method = keras.saving.deserialize_keras_object(method)
            parts.append(get_alignment_method(method))
        if len(parts) < 2 or any(p is None for p in parts):
            raise ValueError(
                "Expected two or more alignment methods (not 'source_only'). "
                f"Received: methods={methods!r}"
            )
        self.parts = parts
        self.adversarial = any(p.adversarial for p in parts)
        self.needs_logits = any(p.needs_logits for p in parts)
        self.needs_strong_view = any(p.needs_strong_view for p in parts)
        names = [p.accuracy_name for p in parts if p.adversarial]
        self.accuracy_name = names[0] if names else AlignmentMethod.accuracy_name

    @property
    def lambda_(self) -> float:
        return self.parts[0].lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        for part in self.parts:
            part.lambda_ = value

    def build(self, input_shape):
        feature_shape = input_shape[0] if self.needs_logits else input_shape
        for part in self.parts:
            if not part.built:
                part.build(input_shape if part.needs_logits else feature_shape)
        self.built = True

    @property
    def needs_source_labels(self) -> bool:
        return any(_needs_labels(part) for part in self.parts)

    def alignment_loss(self, fs, ft, ls, lt, training, **extras):
        add = logged = accuracy = None
        for part in self.parts:
            extra = {
                key: value
                for key, value in extras.items()
                if (key == "target_logits_strong" and part.needs_strong_view)
                or (key == "source_labels" and _needs_labels(part))
            }
            a, log, acc = part.alignment_loss(fs, ft, ls, lt, training, **extra)
            add = a if add is None else add + ops.cast(a, add.dtype)
            if log is not None:
                logged = log if logged is None else logged + ops.cast(log, logged.dtype)
            if accuracy is None and acc is not None:
                accuracy = acc
        return add, logged, accuracy

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["methods"] = [keras.saving.serialize_keras_object(p) for p in self.parts]
        return config


def _needs_labels(part) -> bool:
    return bool(getattr(part, "needs_source_labels", False))


__all__ = ["CombinedAlignment", "build_parts", "split_method_name"]
