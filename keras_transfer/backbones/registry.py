"""The registry of backbone loaders: a spec scheme -> a loader function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras_transfer.backbones.base import LoadedBackbone

Loader = Callable[..., LoadedBackbone]

_LOADERS: dict[str, Loader] = {}
_DESCRIPTIONS: dict[str, str] = {}
_ALIASES: dict[str, str] = {}


def register_backbone_loader(
    scheme: str, loader: Loader, *, description: str = "", overwrite: bool = False
) -> None:
    """Registers `loader` for specs of the form `"<scheme>:<rest>"`.

    The loader is called as `loader(rest, **kwargs)` and must return a
    `LoadedBackbone`.

    Args:
        scheme: str. The scheme, letters, digits and `_` only (e.g. `"my_zoo"`).
        loader: callable. `loader(rest: str, **kwargs) -> LoadedBackbone`.
        description: str. One line shown by `keras-transfer backbones`.
        overwrite: bool. Replace an existing loader. Defaults to False.

    Raises:
        ValueError: the scheme is malformed or already registered.

    Examples:
    ```python
    import keras
    from keras_transfer.backbones import LoadedBackbone, register_backbone_loader

    def tiny(rest, **kwargs):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        return LoadedBackbone(model, modality="features", spec=f"tiny:{rest}")

    register_backbone_loader("tiny", tiny, overwrite=True)
    ```
    """
    if not isinstance(scheme, str) or not scheme.replace("_", "").isalnum():
        raise ValueError(
            "Expected scheme to be a non-empty string of letters, digits and '_'. "
            f"Received: scheme={scheme!r}"
        )
    if not callable(loader):
        raise ValueError(f"Expected loader to be callable. Received: loader={loader!r}")
    if scheme in _LOADERS and not overwrite:
        raise ValueError(
            f"A backbone loader is already registered for scheme {scheme!r}. "
            "Pass overwrite=True to replace it."
        )
    _LOADERS[scheme] = loader
    _DESCRIPTIONS[scheme] = description


def register_backbone_alias(name: str, spec: str) -> None:
    """Makes a bare `name` (no scheme) resolve to `spec`, e.g. `"minilm"`."""
    _ALIASES[name] = spec


def list_backbone_schemes() -> dict[str, str]:
    """Returns `{scheme: description}` of every registered loader, sorted."""
    return {k: _DESCRIPTIONS[k] for k in sorted(_LOADERS)}


def list_backbone_aliases() -> dict[str, str]:
    """Returns `{alias: spec}` of every registered alias."""
    return dict(sorted(_ALIASES.items()))


def resolve(spec: str) -> tuple[str, str]:
    """Splits `spec` into `(scheme, rest)`, resolving aliases."""
    spec = _ALIASES.get(spec, spec)
    scheme, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(
            f"Expected a backbone spec of the form '<scheme>:<name>' "
            f"(schemes: {', '.join(sorted(_LOADERS))}) or a registered alias "
            f"({', '.join(sorted(_ALIASES)) or 'none'}). Received: spec={spec!r}"
        )
    if scheme not in _LOADERS:
        raise ValueError(
            f"Unknown backbone scheme {scheme!r} in spec {spec!r}. Accepted schemes: "
            f"{', '.join(sorted(_LOADERS))}. Register new ones with "
            "keras_transfer.register_backbone_loader(scheme, fn)."
        )
    return scheme, rest


def get_loader(scheme: str) -> Loader:
    return _LOADERS[scheme]


def describe(scheme: str) -> Any:
    return _DESCRIPTIONS.get(scheme, "")
