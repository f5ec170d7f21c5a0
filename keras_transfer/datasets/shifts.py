"""Digits domain pairs with a geometric/noise shift and a colour/contrast shift.

Both pairs split scikit-learn's 1,797 digits into disjoint, stratified pools (source
train/test, target train/test; see ``_digit_pools``) and draw two random views of
each training pool, so that the source has ~1,500 labelled images and the target
~1,000 unlabelled ones, with no underlying digit shared across domains or between
target train and target test. The source is always the plain upsampled digit
(white on black) with a mild jitter (±8°, scale 0.9-1.1, ±1.5 px).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_transfer.datasets._digit_pools import (
    affine,
    as_generator,
    check_size,
    digit_pools,
    pair_from_pools,
    to_uint8_rgb,
)
from keras_transfer.datasets.digits import DomainSplit


def _source_view(x: np.ndarray, pool: np.ndarray, rng: np.random.Generator):
    jittered = affine(
        x, rng, angle=(-8, 8), scale=(0.9, 1.1), shift=1.5, signed_angle=False
    )
    return to_uint8_rgb(jittered)


def _shifted_digits_pair(
    size: int, seed: int, salt: int, target_view: Callable[..., np.ndarray]
) -> tuple[DomainSplit, DomainSplit]:
    """The one recipe of every pair here: jittered digits -> ``target_view`` digits.

    Four disjoint pools of the digits (``salt`` gives each pair its own split for
    the same ``seed``), two views of each training pool (source, target) and of the
    target test pool; ``target_view(x, pool_x, rng)`` draws one target view.
    """
    check_size(size)
    return pair_from_pools(
        digit_pools(size, seed, salt=salt),
        _source_view,
        target_view,
        source_views=2,
        target_views=2,
        seed=seed,
        salt=salt,
    )


def rotate_noise(
    images: np.ndarray,
    seed: int | np.random.Generator = 0,
    *,
    max_angle: float = 45.0,
    min_angle: float = 20.0,
    noise: float = 0.2,
    invert_fraction: float = 0.3,
) -> np.ndarray:
    """Rotates, rescales, shifts, inverts (some) and adds Gaussian noise to images.

    Args:
        images: np.ndarray. Grey images, float in ``[0, 1]`` of shape ``(n, h, w)``.
        seed: int or np.random.Generator. Randomness. Defaults to 0.
        max_angle: float. Largest rotation in degrees. Defaults to 45.
        min_angle: float. Smallest rotation magnitude in degrees (the sign is
            random). Defaults to 20.
        noise: float. Standard deviation of the additive noise (on ``[0, 1]``).
            Defaults to 0.2.
        invert_fraction: float. Fraction of images with inverted contrast.
            Defaults to 0.3.

    Returns:
        ``uint8`` RGB images of shape ``(n, h, w, 3)`` (the three channels equal).

    Examples:
    ```python
    import numpy as np
    from keras_transfer.datasets.shifts import rotate_noise
    out = rotate_noise(np.zeros((2, 32, 32), "float32"), seed=1)
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.uint8
    ```
    """
    rng = as_generator(seed)
    x = affine(
        np.asarray(images, "float32"),
        rng,
        angle=(min_angle, max_angle),
        scale=(0.75, 1.2),
        shift=3.0,
    )
    invert = rng.random(len(x)) < invert_fraction
    x[invert] = 1.0 - x[invert]
    x = x + rng.normal(0.0, noise, size=x.shape).astype("float32")
    return to_uint8_rgb(np.clip(x, 0.0, 1.0))


def digits_rotnoise_domains(
    size: int = 32, seed: int = 0
) -> tuple[DomainSplit, DomainSplit]:
    """Digits -> rotated, rescaled, noisy (30% inverted) digits: a geometric shift.

    Target images are rotated by 20-45° either way, scaled by 0.75-1.2, shifted by
    up to 3 px, inverted (black on white) with probability 0.3 and covered with
    Gaussian noise (σ = 0.2 of the range). Sizes: source train ~1,500, source test
    ~220, target train ~1,080, target test ~570; 10 classes.

    Args:
        size: int. Output height and width (>= 16). Defaults to 32.
        seed: int. Seed of the splits and the transforms. Defaults to 0.

    Returns:
        A tuple ``(source, target)`` of `DomainSplit` (uint8 ``(n, size, size, 3)``).

    Raises:
        ValueError: If ``size`` is not an int >= 16.

    Examples:
    ```python
    from keras_transfer.datasets.shifts import digits_rotnoise_domains
    source, target = digits_rotnoise_domains(size=16)
    assert target.x_train.shape[1:] == (16, 16, 3)
    ```
    """
    return _shifted_digits_pair(
        size, seed, salt=1, target_view=lambda x, pool, rng: rotate_noise(x, rng)
    )


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], "float32")


def svhn_style(
    images: np.ndarray,
    seed: int | np.random.Generator = 0,
    *,
    distractors: np.ndarray | None = None,
    contrast: tuple[float, float] = (0.2, 0.45),
    dark_fraction: float = 0.25,
) -> np.ndarray:
    """Draws grey digits as coloured strokes on coloured, unevenly lit backgrounds.

    In the spirit of SVHN: each digit gets a random background colour and a stroke
    colour whose luminance differs from it by only ``contrast`` (darker than the
    background for ``dark_fraction`` of the digits, lighter for the rest),
    a linear illumination gradient, cropped neighbouring digits at the left and
    right edges (drawn from ``distractors``), a slight blur and sensor noise.

    Args:
        images: np.ndarray. Grey digits, float in ``[0, 1]`` of shape ``(n, h, w)``.
        seed: int or np.random.Generator. Randomness. Defaults to 0.
        distractors: np.ndarray or None. Grey images to draw neighbours from;
            None uses ``images``. Defaults to None.
        contrast: tuple of float. Range of the stroke/background luminance
            difference. Defaults to ``(0.2, 0.45)``.
        dark_fraction: float. Share of digits drawn darker than their background.
            Defaults to 0.25.

    Returns:
        ``uint8`` RGB images of shape ``(n, h, w, 3)``.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.datasets.shifts import svhn_style
    out = svhn_style(np.ones((3, 32, 32), "float32"), seed=0)
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
    ```
    """
    from scipy.ndimage import gaussian_filter

    rng = as_generator(seed)
    x = affine(
        np.asarray(images, "float32"),
        rng,
        angle=(-10, 10),
        scale=(0.8, 1.0),
        shift=1.5,
        signed_angle=False,
    )
    pool = x if distractors is None else np.asarray(distractors, "float32")
    n, h, w = x.shape
    out = np.empty((n, h, w, 3), "float32")
    yy, xx = np.mgrid[0:h, 0:w].astype("float32") / max(h, w)
    for i in range(n):
        mask = x[i].copy()
        for side in (-1, 1):  # partial neighbours, as in house-number crops
            if rng.random() < 0.6:
                other = pool[rng.integers(len(pool))]
                offset = side * int(rng.integers(int(0.6 * w), int(0.75 * w)))
                mask = np.maximum(mask, np.roll(other, offset, axis=1) * _edge(w, side))
        bg = rng.uniform(0.1, 0.9, size=3).astype("float32")
        delta = rng.uniform(*contrast) * (-1 if rng.random() < dark_fraction else 1)
        bg = np.clip(bg - 0.5 * delta, 0.0, 1.0)  # room for the stroke's luminance
        fg = np.clip(bg + delta + rng.normal(0, 0.15, size=3), 0, 1).astype("float32")
        fg += delta - (_luminance(fg) - _luminance(bg))  # exact luminance gap
        img = bg * (1 - mask[..., None]) + fg * mask[..., None]
        gx, gy = rng.uniform(-0.4, 0.4, size=2)
        img = img * (1.0 + gx * (xx - 0.5) + gy * (yy - 0.5))[..., None]
        img = gaussian_filter(img, sigma=(0.6, 0.6, 0))
        out[i] = img + rng.normal(0, 0.03, size=img.shape)
    return to_uint8_rgb(np.clip(out, 0.0, 1.0))


def _edge(w: int, side: int) -> np.ndarray:
    """A column mask keeping the outer 30% on the left (-1) or right (+1) side."""
    cols = np.zeros(w, "float32")
    k = int(0.3 * w)
    if side < 0:
        cols[:k] = 1.0
    else:
        cols[w - k :] = 1.0
    return cols[None, :]


def digits_svhnlike_domains(
    size: int = 32, seed: int = 0
) -> tuple[DomainSplit, DomainSplit]:
    """Digits -> SVHN-like digits: coloured, low-contrast, unevenly lit, with neighbours.

    See `svhn_style` (a quarter of the digits are darker than their background).
    Neighbour digits of a target image come from the same pool (target train or
    target test), never from the source. Sizes: source train ~1,500, source test
    ~220, target train ~1,080, target test ~570; 10 classes.

    Args:
        size: int. Output height and width (>= 16). Defaults to 32.
        seed: int. Seed of the splits and the drawing. Defaults to 0.

    Returns:
        A tuple ``(source, target)`` of `DomainSplit` (uint8 ``(n, size, size, 3)``).

    Raises:
        ValueError: If ``size`` is not an int >= 16.

    Examples:
    ```python
    from keras_transfer.datasets.shifts import digits_svhnlike_domains
    source, target = digits_svhnlike_domains(size=16)
    assert set(target.y_test) == set(range(10))
    ```
    """
    return _shifted_digits_pair(
        size,
        seed,
        salt=2,
        target_view=lambda x, pool, rng: svhn_style(x, rng, distractors=pool),
    )
