"""Two domain pairs of geometric shapes: not digits, four classes (a `--pairs-file`).

Every other pair of `benchmarks/domain_adaptation.py` is built from scikit-learn's
digits (ten classes) or the text grammar (two). These are drawn here, with
scikit-image, and no recipe choice was made on them (stop 49 wrote them and their
claims before their first run):

- ``shapes_photo``: filled shapes in a plain colour on a light plain background ->
  shapes cut out of one natural-image patch, on another patch, with noise (the shape
  is a texture boundary, no longer a colour);
- ``shapes_outline``: the same source -> 2-pixel outlines on a dark background, with
  three distractor lines.

Classes: circle, rectangle, triangle, cross. Source: 1,500 train and 600 test images;
target: 1,000 unlabelled train and 600 test images; classes drawn uniformly, sizes,
positions and angles at random.

    python benchmarks/domain_adaptation.py --pairs-file benchmarks/pairs/shapes.py
"""

from __future__ import annotations

import colorsys

import numpy as np

from keras_transfer.datasets import DomainSplit, register_domain_pair

CLASSES = ("circle", "rectangle", "triangle", "cross")
SOURCE_TRAIN, SOURCE_TEST, TARGET_TRAIN, TARGET_TEST = 1500, 600, 1000, 600


def shape_mask(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean ``(size, size)`` mask of one shape of class ``label``."""
    from skimage import draw

    mask = np.zeros((size, size), bool)
    if label == 0:  # circle
        r = rng.uniform(0.18, 0.36) * size
        cy, cx = rng.uniform(r + 1, size - r - 1, 2)
        mask[draw.disk((cy, cx), r, shape=mask.shape)] = True
    elif label == 1:  # rectangle (axis-aligned, any aspect)
        h, w = rng.uniform(0.3, 0.75, 2) * size
        top, left = rng.uniform(1, size - h - 1), rng.uniform(1, size - w - 1)
        rows, cols = draw.rectangle((top, left), extent=(h, w), shape=mask.shape)
        mask[rows, cols] = True
    elif label == 2:  # triangle (no angle under about 40 degrees)
        radius = rng.uniform(0.25, 0.42) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        start = rng.uniform(0, 2 * np.pi)
        steps = rng.uniform(np.radians(100), np.radians(140), 2)
        angles = start + np.array([0.0, steps[0], steps[0] + steps[1]])
        rows = cy + radius * np.sin(angles)
        cols = cx + radius * np.cos(angles)
        mask[draw.polygon(rows, cols, shape=mask.shape)] = True
    else:  # cross: two bars through one centre
        arm = rng.uniform(0.5, 0.8) * size
        thick = rng.uniform(0.14, 0.24) * size
        cy, cx = rng.uniform(arm / 2 + 1, size - arm / 2 - 1, 2)
        for h, w in ((arm, thick), (thick, arm)):
            rows, cols = draw.rectangle(
                (cy - h / 2, cx - w / 2), extent=(h, w), shape=mask.shape
            )
            mask[rows, cols] = True
    return mask


def _colour(rng: np.random.Generator, value: tuple[float, float]) -> np.ndarray:
    hue, sat, val = rng.uniform(), rng.uniform(0.6, 1.0), rng.uniform(*value)
    return 255.0 * np.array(colorsys.hsv_to_rgb(hue, sat, val))


def _patch(images: list, size: int, rng: np.random.Generator) -> np.ndarray:
    image = images[rng.integers(len(images))]
    top = rng.integers(0, image.shape[0] - size)
    left = rng.integers(0, image.shape[1] - size)
    return image[top : top + size, left : left + size].astype("float32")


def _source(mask, size, rng, images):
    del images
    canvas = np.full((size, size, 3), rng.uniform(200, 240), "float32")
    canvas[mask] = _colour(rng, (0.3, 0.8))
    return canvas + rng.normal(0, 4, canvas.shape)


def _photo(mask, size, rng, images):
    canvas = _patch(images, size, rng)
    fill = 255.0 - _patch(images, size, rng)
    canvas[mask] = 0.3 * canvas[mask] + 0.7 * fill[mask]
    return canvas + rng.normal(0, 10, canvas.shape)


def _outline(mask, size, rng, images):
    from scipy import ndimage
    from skimage import draw

    del images
    canvas = np.full((size, size, 3), rng.uniform(0, 50), "float32")
    for _ in range(3):  # distractor lines
        r0, c0, r1, c1 = rng.integers(0, size, 4)
        rows, cols, weight = draw.line_aa(r0, c0, r1, c1)
        keep = (rows < size) & (cols < size)
        canvas[rows[keep], cols[keep]] = weight[keep, None] * _colour(rng, (0.5, 0.9))
    edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
    canvas[edge] = _colour(rng, (0.7, 1.0))
    return canvas


def _draw(n, size, rng, style, images):
    labels = rng.integers(0, len(CLASSES), n).astype("int32")
    x = np.stack(
        [style(shape_mask(int(y), size, rng), size, rng, images) for y in labels]
    )
    return np.clip(np.round(x), 0, 255).astype("uint8"), labels


def shapes_pair(
    style, size: int = 32, seed: int = 0
) -> tuple[DomainSplit, DomainSplit]:
    """``(source, target)`` `DomainSplit`s: plain shapes -> shapes drawn by `style`."""
    from keras_transfer.datasets.digits import _natural_images

    images = _natural_images() if style is _photo else None
    streams = [np.random.default_rng([seed, k]) for k in range(4)]
    source = DomainSplit(
        *_draw(SOURCE_TRAIN, size, streams[0], _source, None),
        *_draw(SOURCE_TEST, size, streams[1], _source, None),
    )
    target = DomainSplit(
        *_draw(TARGET_TRAIN, size, streams[2], style, images),
        *_draw(TARGET_TEST, size, streams[3], style, images),
    )
    return source, target


for _name, _style, _shift in (
    ("shapes_photo", _photo, "plain shapes -> shapes cut from natural-image patches"),
    ("shapes_outline", _outline, "plain filled shapes -> outlines, dark, distractors"),
):
    register_domain_pair(
        _name,
        lambda size=32, seed=0, _style=_style: shapes_pair(_style, size, seed),
        num_classes=len(CLASSES),
        shift=_shift,
        overwrite=True,
    )
