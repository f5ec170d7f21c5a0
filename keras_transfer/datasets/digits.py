"""The digits domain pair: scikit-learn digits (source) and an MNIST-M-style target.

Source images are scikit-learn's 8x8 digits upsampled to ``size x size x 3``. Target
images follow the MNIST-M recipe of Ganin et al. 2016: a random color patch cropped from
one of scikit-image's bundled natural images is blended with the digit as
``|patch - digit|`` per channel. Source and target come from disjoint halves of the
digits, so no target image has a source twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PATCH_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")


@dataclass(frozen=True)
class DomainSplit:
    """Arrays of one domain: train and test images (uint8, NHWC) and int labels.

    Attributes:
        x_train: np.ndarray. Training images, ``uint8`` of shape ``(n, size, size, 3)``.
        y_train: np.ndarray. Training labels, ``int32`` in ``[0, 10)``.
        x_test: np.ndarray. Held-out images.
        y_test: np.ndarray. Held-out labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _upsample(images8: np.ndarray, size: int) -> np.ndarray:
    """Upsamples 8x8 digits in [0, 16] to uint8 ``size x size x 3`` (bilinear)."""
    import tensorflow as tf

    x = images8.reshape(-1, 8, 8, 1).astype("float32") / 16.0
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.clip(x * 255.0, 0, 255).astype("uint8")
    return np.repeat(x, 3, axis=-1)


def _natural_images() -> list[np.ndarray]:
    from skimage import data as skdata

    images = []
    for name in _PATCH_IMAGES:
        img = getattr(skdata, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        images.append(img[..., :3].astype("uint8"))
    return images


def mnist_m_style(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Blends uint8 digit images with random natural-image patches: ``|patch - digit|``.

    Args:
        images: np.ndarray. ``uint8`` images of shape ``(n, h, w, 3)``.
        seed: int. Seed of the patch choice. Defaults to 0.

    Returns:
        ``uint8`` array of the same shape.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.datasets import mnist_m_style
    x = np.zeros((4, 32, 32, 3), "uint8")
    assert mnist_m_style(x).shape == (4, 32, 32, 3)
    ```
    """
    rng = np.random.default_rng(seed)
    sources = _natural_images()
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    for i in range(n):
        src = sources[rng.integers(len(sources))]
        top = rng.integers(0, src.shape[0] - h)
        left = rng.integers(0, src.shape[1] - w)
        patch = src[top : top + h, left : left + w].astype("int16")
        out[i] = np.abs(patch - images[i].astype("int16")).astype("uint8")
    return out


def digits_domains(
    size: int = 32, test_fraction: float = 0.3, seed: int = 0
) -> tuple[DomainSplit, DomainSplit]:
    """Returns the (source, target) digits domain pair, built offline.

    The 1,797 scikit-learn digits are split in two disjoint halves (stratified): the
    first half becomes the source domain (plain upsampled digits), the second the target
    domain (MNIST-M-style blends). Each domain is then split into train and test.

    Args:
        size: int. Output height and width. Defaults to 32.
        test_fraction: float. Fraction of each domain held out. Defaults to 0.3.
        seed: int. Seed of the splits and the patches. Defaults to 0.

    Returns:
        A tuple ``(source, target)`` of `DomainSplit`.

    Examples:
    ```python
    from keras_transfer.datasets import digits_domains
    source, target = digits_domains(size=16)
    assert source.x_train.shape[1:] == (16, 16, 3)
    ```
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "Expected test_fraction to be in (0, 1). "
            f"Received: test_fraction={test_fraction}"
        )
    if size < 8:
        raise ValueError(f"Expected size >= 8. Received: size={size}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = _upsample(digits.images, size)
    y = digits.target.astype("int32")
    xs, xt, ys, yt = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=seed
    )
    xt = mnist_m_style(xt, seed=seed)

    def split(xd: np.ndarray, yd: np.ndarray) -> DomainSplit:
        a, b, c, d = train_test_split(
            xd, yd, test_size=test_fraction, stratify=yd, random_state=seed
        )
        return DomainSplit(a, c, b, d)

    return split(xs, ys), split(xt, yt)
