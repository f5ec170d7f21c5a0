"""Hyperparameter specs of `TransferHyperModel`: a user's value -> a KerasTuner hp.

Every hyperparameter argument accepts: None (the default search range), a scalar
(fixed: ``hp.Fixed``), a tuple ``(min, max)`` or ``(min, max, step)`` (a range), or a
list (``hp.Choice``).
"""

from __future__ import annotations

from typing import Any

from keras_transfer._deprecation import rename_config_keys, warn_renamed

HP = Any  # a scalar, tuple range, list of choices or None


def define(hp, name: str, spec: HP, default: HP, *, integer=False, log=False):
    """Declares one hyperparameter from a user spec (see the module docstring)."""
    spec = default if spec is None else spec
    if isinstance(spec, list):
        return hp.Choice(name, spec)
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not spec[0] < spec[1]:
            raise ValueError(
                f"Expected {name} to be a scalar, a list of choices or a tuple "
                f"(min, max[, step]) with min < max. Received: {name}={spec!r}"
            )
        step = spec[2] if len(spec) == 3 else None
        sampling = "log" if log else "linear"
        if integer:
            return hp.Int(name, int(spec[0]), int(spec[1]), step=step or 1)
        return hp.Float(
            name, float(spec[0]), float(spec[1]), step=step, sampling=sampling
        )
    return hp.Fixed(name, spec)


def check_width(name: str, spec: HP) -> None:
    """An MLP width spec holds positive ints (None: a linear head, no MLP)."""
    if spec is None:
        return
    values = list(spec[:2]) if isinstance(spec, tuple) else spec
    values = values if isinstance(values, list) else [values]
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            f"Expected {name} to be units >= 1 (an int, a list of ints or a "
            f"(min, max[, step]) tuple), or None for a linear head. Received: "
            f"{name}={spec!r}"
        )


def widths_spec(method: str, head_units: HP, discriminator_units: HP) -> dict:
    """The spec of the searched MLP width: ``head_units``, DANN's ``discriminator_units``.

    ``...`` means not given. DANN's label head is linear, so ``head_units`` there is
    the old name of ``discriminator_units`` (`renamed_arguments` cannot say so:
    ``head_units`` stays a parameter, for the classifier).
    """
    default = [32, 64, 128]
    if method == "classifier":
        if discriminator_units is not ...:
            raise ValueError(
                "Expected discriminator_units only with method='dann' (a classifier "
                "has no discriminator). Received: "
                f"discriminator_units={discriminator_units!r} with a classifier"
            )
        return {"head_units": default if head_units is ... else head_units}
    if head_units is not ...:  # its meaning before discriminator_units existed
        given = {"head_units": head_units}
        if discriminator_units is not ...:
            given["discriminator_units"] = discriminator_units
        where = "TransferHyperModel(method='dann')"
        spec = rename_config_keys(given, {"head_units": "discriminator_units"}, where)
        warn_renamed(where, "head_units", "discriminator_units", stacklevel=4)
        discriminator_units = spec["discriminator_units"]
    return {
        "discriminator_units": default
        if discriminator_units is ...
        else discriminator_units
    }
