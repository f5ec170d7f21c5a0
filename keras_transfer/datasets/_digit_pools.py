"""Shared plumbing of the image domain pairs built from scikit-learn's digits.

A pair built on the 1,797 digits splits them into disjoint, stratified pools (source
train, source test, target train, target test), so no image of one domain has a twin
in the other and no target-test digit is seen (even unlabelled) in target training.
A pool can be drawn in several random "views" (one transformed copy each) to reach
benchmark sizes from a small set of underlying images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_transfer.datasets.digits import DomainSplit, _upsample

# Fractions of the digits going to each pool: source train/test, target train/test.
POOL_FRACTIONS = (0.42, 0.12, 0.30, 0.16)


def check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"Expected size to be an int >= 16. Received: size={size!r}")


def as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    """``seed`` itself when it is a Generator, else a new one seeded with it."""
    return (
        seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    )


def pool_indices(y: np.ndarray, seed: int, salt: int = 0) -> list[np.ndarray]:
    """Stratified, disjoint index pools (source train/test, target train/test).

    ``salt`` makes each pair draw its own split for the same ``seed``.
    """
    rng = np.random.default_rng([seed, salt])
    pools: list[list[int]] = [[] for _ in POOL_FRACTIONS]
    bounds = np.cumsum(POOL_FRACTIONS)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        cuts = np.round(bounds * len(idx)).astype(int)
        for k, part in enumerate(np.split(idx, cuts[:-1])):
            pools[k].extend(part.tolist())
    return [rng.permutation(np.asarray(pool, "int64")) for pool in pools]


def digit_pools(
    size: int, seed: int, salt: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits the upsampled digits into the four pools of `pool_indices`.

    Returns:
        ``[(x, y)] * 4`` for source train, source test, target train, target test;
        ``x`` is float32 in ``[0, 1]`` of shape ``(n, size, size)``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = _upsample(digits.images, size)[..., 0].astype("float32") / 255.0
    y = digits.target.astype("int32")
    return [(x[idx], y[idx]) for idx in pool_indices(y, seed, salt)]


def views(
    x: np.ndarray,
    y: np.ndarray,
    n_views: int,
    transform: Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``n_views`` transformed copies of a pool, shuffled together.

    ``transform(x, pool_x, rng)`` maps float ``(n, h, w)`` images of one view to
    uint8 ``(n, h, w, 3)``; ``pool_x`` is the whole pool (for distractors).
    """
    xs = [transform(x, x, rng) for _ in range(n_views)]
    xv = np.concatenate(xs)
    yv = np.tile(y, n_views).astype("int32")
    order = rng.permutation(len(yv))
    return xv[order], yv[order]


def to_uint8_rgb(x: np.ndarray) -> np.ndarray:
    """Float images in ``[0, 1]``, ``(n, h, w)`` or ``(n, h, w, 3)`` -> uint8 RGB."""
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    return np.clip(np.round(x * 255.0), 0, 255).astype("uint8")


def affine(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    angle: tuple[float, float],
    scale: tuple[float, float],
    shift: float,
    signed_angle: bool = True,
) -> np.ndarray:
    """Random rotation (degrees), isotropic scale and translation (pixels) per image.

    ``angle`` is the range of the rotation's magnitude when ``signed_angle`` (a
    random sign is drawn), else the range of the angle itself.
    """
    from skimage.transform import AffineTransform, warp

    n, h, w = images.shape
    out = np.empty_like(images)
    center = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    for i in range(n):
        theta = rng.uniform(*angle)
        if signed_angle and rng.random() < 0.5:
            theta = -theta
        s = rng.uniform(*scale)
        t = rng.uniform(-shift, shift, size=2)
        to_origin = AffineTransform(translation=-center)
        rotate = AffineTransform(rotation=np.deg2rad(theta), scale=s)
        back = AffineTransform(translation=center + t)
        matrix = (to_origin.params.T @ rotate.params.T @ back.params.T).T
        out[i] = warp(
            images[i], AffineTransform(matrix=matrix).inverse, order=1, cval=0.0
        )
    return out


def pair_from_pools(
    pools: list[tuple[np.ndarray, np.ndarray]],
    source_transform: Callable,
    target_transform: Callable,
    *,
    source_views: int,
    target_views: int,
    seed: int,
    salt: int = 0,
) -> tuple[DomainSplit, DomainSplit]:
    """Builds (source, target) `DomainSplit`s from the four pools and transforms."""
    rng = np.random.default_rng([seed, salt, 7])
    (xs, ys), (xs_t, ys_t), (xt, yt), (xt_t, yt_t) = pools
    source = DomainSplit(
        *views(xs, ys, source_views, source_transform, rng),
        *views(xs_t, ys_t, 1, source_transform, rng),
    )
    target = DomainSplit(
        *views(xt, yt, target_views, target_transform, rng),
        *views(xt_t, yt_t, target_views, target_transform, rng),
    )
    return source, target
