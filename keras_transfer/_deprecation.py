"""Renamed arguments: one helper for every deprecated alias (see docs/vocabulary.md).

A renamed keyword keeps working for one release: passing the old name emits a
`DeprecationWarning` that names the new one, passing both is a `ValueError`. Saved
configs use `rename_config_keys`, which maps old keys silently (a saved file is not
the user's code; saving it again writes the new key).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["deprecated_property", "rename_config_keys", "renamed_arguments"]

F = TypeVar("F", bound=Callable[..., Any])

#: The release in which the old names stop being accepted.
REMOVAL_VERSION = "0.3"


def _both_error(where: str, old: str, new: str) -> ValueError:
    return ValueError(
        f"Expected only {new}= (the new name of {old}=) in {where}. Received both "
        f"{new}= and {old}=: drop {old}=."
    )


def warn_renamed(where: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Emits the one `DeprecationWarning` text for a renamed argument."""
    warnings.warn(
        f"{where}: {old}= is deprecated and will be removed in keras_transfer "
        f"{REMOVAL_VERSION}; use {new}= instead (same meaning). "
        "See docs/vocabulary.md.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_arguments(**renames: str) -> Callable[[F], F]:
    """Decorator: accepts old keyword names as deprecated aliases of new ones.

    Args:
        **renames: ``old_name="new_name"`` pairs. ``new_name`` must be a parameter
            of the decorated function (positional or keyword).

    Returns:
        A decorator. The wrapped function warns (`DeprecationWarning`) when an old
        name is passed and calls the function with the new name; it raises
        `ValueError` when both the old and the new name are given (the new one
        positionally or by keyword).

    Examples:
    ```python
    import warnings
    from keras_transfer._deprecation import renamed_arguments

    @renamed_arguments(max_value="lambda_max")
    def ramp(progress, lambda_max=1.0):
        return progress * lambda_max

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ramp(0.5, max_value=2.0) == 1.0
    assert "lambda_max=" in str(caught[0].message)
    ```
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        for old, new in renames.items():
            if new not in signature.parameters:
                raise TypeError(f"{fn.__qualname__} has no parameter {new!r}.")
            if old in signature.parameters:
                raise TypeError(f"{fn.__qualname__} still has the old name {old!r}.")
        where = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                given = signature.bind_partial(*args, **kwargs).arguments
                if new in given:
                    raise _both_error(where, old, new)
                warn_renamed(where, old, new)
                kwargs[new] = value
            return fn(*args, **kwargs)

        # Keras reads constructor signatures with getfullargspec, which does not
        # follow __wrapped__: give the wrapper the real signature.
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def rename_config_keys(
    config: Mapping[str, Any], renames: Mapping[str, str], where: str
) -> dict[str, Any]:
    """Returns a copy of a saved config with old keys (``renames`` keys) renamed.

    No warning: a config read from a file was written by an earlier release, not
    typed by the user; saving again writes the new key.

    Args:
        config: mapping. A `get_config()` dict, possibly from an older release.
        renames: mapping. ``{"old_key": "new_key"}``.
        where: str. The class or file named in the error.

    Returns:
        A new dict with the new keys.

    Raises:
        ValueError: If a config holds both an old key and its new one.
    """
    out = dict(config)
    for old, new in renames.items():
        if old in out:
            if new in out:
                raise _both_error(where, old, new)
            out[new] = out.pop(old)
    return out


def deprecated_property(old: str, new: str) -> property:
    """A read/write property ``old`` forwarding to attribute ``new``, with a warning.

    For attributes renamed on plain Python objects (never on Keras layers or
    models: Keras saves weights under attribute names, an extra property would
    move them).
    """

    def fget(self: Any) -> Any:
        warn_renamed(type(self).__name__, old, new)
        return getattr(self, new)

    def fset(self: Any, value: Any) -> None:
        warn_renamed(type(self).__name__, old, new)
        setattr(self, new, value)

    return property(fget, fset, doc=f"Deprecated alias of `{new}`.")
