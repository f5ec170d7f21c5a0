"""A synthetic-to-real pair: digits rendered from fonts -> real handwritten digits.

The source digits are drawn with PIL from the TrueType fonts that ship with
matplotlib (DejaVu Sans/Serif/Mono and STIX, regular/bold/italic), each at a random
scale, position, rotation and stroke weight, white on a clean black background. The
target is scikit-learn's real handwritten digits (8x8 scans upsampled, lightly
blurred). Nothing is downloaded and no underlying image is shared.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from keras_transfer.datasets._digit_pools import (
    as_generator,
    check_size,
    to_uint8_rgb,
)
from keras_transfer.datasets.digits import DomainSplit, _upsample

FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)
_RENDER_PX = 64  # glyphs are drawn large, cropped to their ink, then resized


def _font_dir() -> str:
    import matplotlib

    return os.path.join(
        os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf"
    )


@functools.cache
def _font(name: str):
    from PIL import ImageFont

    return ImageFont.truetype(os.path.join(_font_dir(), name), _RENDER_PX)


def _glyph(digit: int, font_name: str, stroke: int, angle: float):
    """The ink of one digit, cropped to its bounding box (a PIL 'L' image)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (2 * _RENDER_PX, 2 * _RENDER_PX), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (_RENDER_PX // 2, _RENDER_PX // 4),
        str(digit),
        fill=255,
        font=_font(font_name),
        stroke_width=stroke,
        stroke_fill=255,
    )
    canvas = canvas.rotate(angle, resample=Image.BILINEAR)
    return canvas.crop(canvas.getbbox())


def render_digits(
    labels: np.ndarray,
    size: int = 32,
    seed: int | np.random.Generator = 0,
    *,
    fonts: tuple[str, ...] = FONT_FILES,
    height_range: tuple[float, float] = (0.7, 1.0),
    shift: float = 2.0,
    stroke_range: tuple[int, int] = (1, 5),
) -> np.ndarray:
    """Renders one digit image per label from fonts (white on black).

    Each digit gets a random font, stroke weight (``stroke_range`` px at 64 px),
    rotation (±15°), height (``height_range`` of the image, aspect ratio kept, never
    wider than the image) and is centred up to ``shift`` px (at 32 px) off centre,
    like scikit-learn's size-normalised, centred digits.

    Args:
        labels: np.ndarray. Digits in ``[0, 10)``.
        size: int. Output height and width. Defaults to 32.
        seed: int or np.random.Generator. Randomness. Defaults to 0.
        fonts: tuple of str. Font file names in matplotlib's ``mpl-data/fonts/ttf``.
            Defaults to `FONT_FILES`.
        height_range: tuple of float. Digit height as a fraction of ``size``.
            Defaults to ``(0.7, 1.0)``.
        shift: float. Largest offset from the centre, in pixels at 32 px (scaled
            with ``size``). Defaults to 2.
        stroke_range: tuple of int. Smallest and largest extra stroke width in
            pixels of the 64 px rendering. Defaults to ``(1, 5)``.

    Returns:
        ``uint8`` RGB images of shape ``(len(labels), size, size, 3)``.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.datasets.fonts import render_digits
    x = render_digits(np.array([0, 7]), size=32, seed=0)
    assert x.shape == (2, 32, 32, 3) and x.max() > 200
    ```
    """
    from PIL import Image

    rng = as_generator(seed)
    labels = np.asarray(labels)
    out = np.zeros((len(labels), size, size), "float32")
    for i, digit in enumerate(labels):
        glyph = _glyph(
            int(digit),
            fonts[rng.integers(len(fonts))],
            int(rng.integers(stroke_range[0], stroke_range[1] + 1)),
            float(rng.uniform(-15, 15)),
        )
        gw, gh = glyph.size
        height = rng.uniform(*height_range) * size
        scale = min(height / gh, size / gw)
        w, h = max(1, round(gw * scale)), max(1, round(gh * scale))
        small = np.asarray(glyph.resize((w, h), Image.LANCZOS), "float32") / 255.0
        jitter = shift * size / 32
        top = int(
            np.clip(round((size - h) / 2 + rng.uniform(-jitter, jitter)), 0, size - h)
        )
        left = int(
            np.clip(round((size - w) / 2 + rng.uniform(-jitter, jitter)), 0, size - w)
        )
        out[i, top : top + h, left : left + w] = small
    return to_uint8_rgb(np.clip(out, 0.0, 1.0))


def fonts_digits_domains(
    size: int = 32,
    seed: int = 0,
    *,
    num_source: int = 2500,
    num_source_test: int = 500,
    num_target_test: int = 600,
) -> tuple[DomainSplit, DomainSplit]:
    """Font-rendered digits (source) -> real handwritten digits (target).

    The target is all 1,797 scikit-learn digits, upsampled and blurred (σ = 0.6 px
    at 32 px), split stratified into train (~1,200, unlabelled for adaptation) and
    test (``num_target_test``). Source labels are balanced.

    Args:
        size: int. Output height and width (>= 16). Defaults to 32.
        seed: int. Seed of the rendering and the split. Defaults to 0.
        num_source: int. Rendered training images. Defaults to 2500.
        num_source_test: int. Rendered held-out images. Defaults to 500.
        num_target_test: int. Real digits held out for testing. Defaults to 600.

    Returns:
        A tuple ``(source, target)`` of `DomainSplit` (uint8 ``(n, size, size, 3)``).

    Raises:
        ValueError: If ``size`` is not an int >= 16 or a count is out of range.

    Examples:
    ```python
    from keras_transfer.datasets.fonts import fonts_digits_domains
    source, target = fonts_digits_domains(size=16, num_source=50, num_source_test=20)
    assert source.x_train.shape == (50, 16, 16, 3)
    ```
    """
    check_size(size)
    for name, value, high in (
        ("num_source", num_source, None),
        ("num_source_test", num_source_test, None),
        ("num_target_test", num_target_test, 1700),
    ):
        if not isinstance(value, int) or value < 10 or (high and value > high):
            raise ValueError(
                f"Expected {name} to be an int in [10, {high or 'inf'}]. "
                f"Received: {name}={value!r}"
            )
    from scipy.ndimage import gaussian_filter
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng([seed, 11])
    source_arrays = []
    for n in (num_source, num_source_test):
        y = (np.arange(n) % 10).astype("int32")
        rng.shuffle(y)
        source_arrays += [render_digits(y, size, rng), y]
    digits = load_digits()
    x = _upsample(digits.images, size).astype("float32") / 255.0
    x = gaussian_filter(x, sigma=(0, 0.6 * size / 32, 0.6 * size / 32, 0))
    x = to_uint8_rgb(np.clip(x, 0.0, 1.0))
    y = digits.target.astype("int32")
    xt, xt_test, yt, yt_test = train_test_split(
        x, y, test_size=num_target_test, stratify=y, random_state=seed
    )
    return DomainSplit(*source_arrays), DomainSplit(xt, yt, xt_test, yt_test)
