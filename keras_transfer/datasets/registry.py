"""A registry of the offline domain pairs: one name -> one (source, target) builder.

Every pair is built from data that ships inside installed packages (scikit-learn,
scikit-image, matplotlib's fonts, a seeded text grammar), deterministically from a
seed, and nothing is cached on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keras_transfer.datasets.digits import DomainSplit


@dataclass(frozen=True)
class DomainPairInfo:
    """What a registered domain pair is.

    Attributes:
        name: str. Registry name, e.g. ``"digits_rotnoise"``.
        builder: callable. ``builder(size=..., seed=...)`` (images) or
            ``builder(seed=...)`` (text) -> ``(source, target)`` `DomainSplit`s.
        modality: str. ``"image"`` or ``"text"``.
        num_classes: int. Number of classes.
        shift: str. One line on the kind of shift, for tables and docs.
    """

    name: str
    builder: Callable[..., tuple[DomainSplit, DomainSplit]]
    modality: str
    num_classes: int
    shift: str


_PAIRS: dict[str, DomainPairInfo] = {}


def register_domain_pair(
    name: str,
    builder: Callable[..., tuple[DomainSplit, DomainSplit]],
    *,
    modality: str = "image",
    num_classes: int = 10,
    shift: str = "",
    overwrite: bool = False,
) -> None:
    """Registers a domain pair builder under ``name``.

    Args:
        name: str. Registry name (lower case, no spaces).
        builder: callable. Image pairs take ``size`` and ``seed`` keywords, text pairs
            ``seed``; both return ``(source, target)`` `DomainSplit`s.
        modality: str. ``"image"`` or ``"text"``. Defaults to ``"image"``.
        num_classes: int. Number of classes (>= 2). Defaults to 10.
        shift: str. One line describing the shift. Defaults to ``""``.
        overwrite: bool. Replace a pair already registered under ``name`` (a
            script that registers its pairs can then run twice in one process).
            Defaults to False.

    Raises:
        ValueError: For a bad name, modality or class count, or a taken name
            (without ``overwrite``).

    Examples:
    ```python
    from keras_transfer.datasets import digits_domains
    from keras_transfer.datasets.registry import _PAIRS, register_domain_pair
    register_domain_pair("my_digits", digits_domains, shift="blends")
    _PAIRS.pop("my_digits")
    ```
    """
    if not isinstance(name, str) or not name or name != name.lower() or " " in name:
        raise ValueError(
            f"Expected name to be a lower-case string without spaces. Received: {name!r}"
        )
    if name in _PAIRS and not overwrite:
        raise ValueError(
            f"Expected a new domain pair name. Received: name={name!r}, which is "
            "already registered (pass overwrite=True to replace it)"
        )
    if modality not in ("image", "text"):
        raise ValueError(
            f"Expected modality to be 'image' or 'text'. Received: modality={modality!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"Expected num_classes to be an int >= 2. Received: {num_classes!r}"
        )
    if not callable(builder):
        raise ValueError(f"Expected builder to be callable. Received: {builder!r}")
    _PAIRS[name] = DomainPairInfo(name, builder, modality, num_classes, shift)


def list_domain_pairs(modality: str | None = None) -> list[str]:
    """Names of the registered domain pairs, sorted.

    Args:
        modality: str or None. Keep only ``"image"`` or ``"text"`` pairs; None keeps
            all. Defaults to None.

    Returns:
        list of str.

    Examples:
    ```python
    from keras_transfer.datasets import list_domain_pairs
    assert "digits_mnistm" in list_domain_pairs("image")
    assert list_domain_pairs("text") == ["sentiment"]
    ```
    """
    if modality not in (None, "image", "text"):
        raise ValueError(
            "Expected modality to be None, 'image' or 'text'. "
            f"Received: modality={modality!r}"
        )
    return sorted(
        name for name, info in _PAIRS.items() if modality in (None, info.modality)
    )


def domain_pair_info(name: str) -> DomainPairInfo:
    """The `DomainPairInfo` registered under ``name``.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    if name not in _PAIRS:
        raise ValueError(
            f"Expected name to be one of {list_domain_pairs()}. Received: name={name!r}"
        )
    return _PAIRS[name]


def domain_pair(
    name: str, size: int = 32, seed: int = 0
) -> tuple[DomainSplit, DomainSplit]:
    """Builds the registered domain pair ``name``: ``(source, target)``.

    Args:
        name: str. One of `list_domain_pairs()`.
        size: int. Image height and width (ignored by text pairs). Defaults to 32.
        seed: int. Seed of the splits and the synthetic transforms. Defaults to 0.

    Returns:
        A tuple ``(source, target)`` of `DomainSplit`. Images are ``uint8`` of shape
        ``(n, size, size, 3)``; texts are 1-D object arrays of ``str``.

    Raises:
        ValueError: For an unknown name.

    Examples:
    ```python
    from keras_transfer.datasets import domain_pair
    source, target = domain_pair("digits_rotnoise", size=16)
    assert source.x_train.dtype == "uint8" and target.x_test.shape[1:] == (16, 16, 3)
    ```
    """
    info = domain_pair_info(name)
    if info.modality == "text":
        return info.builder(seed=seed)
    return info.builder(size=size, seed=seed)


def _register_builtin() -> None:
    from keras_transfer.datasets.digits import digits_domains
    from keras_transfer.datasets.fonts import fonts_digits_domains
    from keras_transfer.datasets.shifts import (
        digits_rotnoise_domains,
        digits_svhnlike_domains,
    )
    from keras_transfer.datasets.text import sentiment_domains

    register_domain_pair(
        "digits_mnistm",
        digits_domains,
        shift="digits -> MNIST-M-style blends with natural-image patches",
    )
    register_domain_pair(
        "digits_rotnoise",
        digits_rotnoise_domains,
        shift="digits -> rotated (20-45°), rescaled, noisy, partly inverted digits",
    )
    register_domain_pair(
        "fonts_digits",
        fonts_digits_domains,
        shift="font-rendered digits -> real handwritten digits (synthetic to real)",
    )
    register_domain_pair(
        "digits_svhnlike",
        digits_svhnlike_domains,
        shift="digits -> coloured, low-contrast, unevenly lit digits with neighbours",
    )
    register_domain_pair(
        "sentiment",
        _sentiment_pair(sentiment_domains),
        modality="text",
        num_classes=2,
        shift="synthetic reviews: restaurants -> electronics",
    )


def _sentiment_pair(sentiment_domains):
    def build(seed: int = 0) -> tuple[DomainSplit, DomainSplit]:
        return sentiment_domains(
            "restaurants", "electronics", num_train=600, num_test=300, seed=seed
        )

    build.__doc__ = "Restaurants -> electronics, 600 train and 300 test sentences each."
    return build


_register_builtin()
