"""Field helpers of the config schemas: help text and choices in field metadata."""

from __future__ import annotations

from dataclasses import field
from typing import Any

__all__ = ["choices_text", "option", "section"]


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field carrying its help text (and accepted choices) in metadata.

    Args:
        default: Any. The default; a list or dict default is copied per instance.
        help: str. One or two sentences shown by `--help`, templates and docs.
        choices: tuple or None. The accepted values, checked by `from_dict`.
            Defaults to None (any value of the field's type).

    Returns:
        A `dataclasses.Field`.

    Examples:
    ```python
    from dataclasses import dataclass, fields
    from keras_transfer.config._fields import option

    @dataclass
    class Section:
        units: int = option(8, "Hidden units.")

    assert fields(Section)[0].metadata["help"] == "Hidden units."
    ```
    """
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, **overrides: Any) -> Any:
    """A nested-section field: a fresh `cls(**overrides)` per config instance.

    Args:
        cls: type. The section dataclass.
        **overrides: fields whose defaults differ in this place (e.g. the
            `target` data of `AdaptConfig` defaults to `digits_target`).

    Returns:
        A `dataclasses.Field`.
    """
    return field(default_factory=lambda: cls(**overrides))


def choices_text(choices: tuple) -> str:
    """The accepted values as a YAML file spells them (``null``, ``true``, ``false``).

    Examples:
    ```python
    from keras_transfer.config._fields import choices_text
    assert choices_text(("auto", True, None)) == "auto, true, null"
    ```
    """
    spelled = {None: "null", True: "true", False: "false"}
    return ", ".join(
        spelled[c] if c is None or isinstance(c, bool) else str(c) for c in choices
    )
