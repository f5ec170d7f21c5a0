"""A domain pair from two image folders of your own, for the adaptation benchmark.

`folder_pair(source_dir, target_dir)` reads two folders laid out as
``<dir>/<class name>/<images>`` (the layout `keras.utils.image_dataset_from_directory`
reads) with the same class subfolders, and splits each into train and test the way
the built-in pairs are split. `register_folder_pair` puts such a pair in the registry
under a name, so that `benchmarks/domain_adaptation.py --folder-pair NAME SOURCE
TARGET` (or `domain_pair(NAME)`) runs every method, source-only and train-on-target
on it with the one default recipe. The target's labels are read for the test
numbers and the train-on-target oracle only, as on the built-in pairs.
"""

from __future__ import annotations

import os

import numpy as np

from keras_transfer.datasets.digits import DomainSplit
from keras_transfer.datasets.registry import register_domain_pair


def _class_folders(directory: str | os.PathLike, role: str) -> list[str]:
    if not os.path.isdir(directory):
        raise ValueError(
            f"The {role} folder {str(directory)!r} does not exist. Expected a folder "
            "with one subfolder of images per class (<dir>/<class name>/<images>)."
        )
    return sorted(d.name for d in os.scandir(directory) if d.is_dir())


def _check_classes(source_dir, target_dir) -> list[str]:
    source = _class_folders(source_dir, "source")
    target = _class_folders(target_dir, "target")
    if source != target:
        raise ValueError(
            "Expected the source and target folders to have the same class "
            f"subfolders. Received: only in the source {sorted(set(source) - set(target))}"
            f", only in the target {sorted(set(target) - set(source))} (source "
            f"{str(source_dir)!r}, target {str(target_dir)!r})"
        )
    if len(source) < 2:
        raise ValueError(
            f"Expected at least 2 class subfolders. Received: {source} in "
            f"{str(source_dir)!r} and {str(target_dir)!r}"
        )
    return source


def _split(directory, role, names, size, seed, test_fraction, color_mode):
    # imported here: `keras_transfer.datasets` loads without TensorFlow
    from keras_transfer.data import folders
    from keras_transfer.data.files import image_files

    x, y, _ = image_files(
        directory, (size, size), class_names=names, color_mode=color_mode
    )
    empty = [names[c] for c in range(len(names)) if not np.any(y == c)]
    if empty:
        raise ValueError(
            f"Expected images in every class subfolder of the {role} folder "
            f"{str(directory)!r}. Received: no images in {empty}"
        )
    train, test = folders.stratified_split(y, test_fraction, seed)
    if not len(train) or not len(test):
        raise ValueError(
            f"The {role} folder {str(directory)!r} has {len(y)} images: too few to "
            f"split into train and test with test_fraction={test_fraction}."
        )
    pixels = np.asarray(x)  # decodes every image (uint8)
    return DomainSplit(pixels[train], y[train], pixels[test], y[test])


def folder_pair(
    source_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    *,
    size: int = 32,
    seed: int = 0,
    test_fraction: float = 0.3,
    color_mode: str = "rgb",
) -> tuple[DomainSplit, DomainSplit]:
    """Two labelled image folders as a `(source, target)` pair of `DomainSplit`s.

    Both folders need the same class subfolders (``<dir>/<class>/**/<image>``; the
    labels follow the sorted class names). Every image is decoded and resized to
    ``size x size`` (bilinear, rounded to uint8, as `kt.data.image_files`), and each
    domain is split into train and test, stratified by class, seeded. In the
    benchmark the target's train labels are read only by the train-on-target
    oracle, its test labels only to score; adaptation sees the target's train
    images alone.

    Args:
        source_dir: str or path. The labelled source domain.
        target_dir: str or path. The target domain, labelled for scoring.
        size: int. Image height and width. Defaults to 32.
        seed: int. Seed of both train/test splits. Defaults to 0.
        test_fraction: float in (0, 1). Share of each domain (each class) held out
            as its test split. Defaults to 0.3.
        color_mode: ``"rgb"``, ``"grayscale"`` or ``"rgba"``. Defaults to
            ``"rgb"`` (the benchmark's encoder reads RGB).

    Returns:
        ``(source, target)``: `DomainSplit`s of uint8 images ``(n, size, size, c)``
        and int32 labels.

    Raises:
        ValueError: a missing folder, different class subfolders, fewer than two
            classes, a class without images, a file that is not an image, a bad
            ``size`` or ``test_fraction``, or too few images to split.

    Examples:
    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.datasets import folder_pair
    root = Path(tempfile.mkdtemp())
    for domain, value in (("photos", 40), ("sketches", 220)):
        for label in ("cat", "dog"):
            (root / domain / label).mkdir(parents=True)
            for i in range(4):
                image = np.full((20, 20, 3), value + i, "uint8")
                keras.utils.save_img(
                    root / domain / label / f"{i}.png", image, scale=False
                )
    source, target = folder_pair(root / "photos", root / "sketches", size=8,
                                 test_fraction=0.25)
    assert source.x_train.shape == (6, 8, 8, 3) and len(target.y_test) == 2
    assert sorted(target.y_test.tolist()) == [0, 1]  # stratified
    ```
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"Expected size to be a positive int. Received: size={size!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"Expected test_fraction in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    names = _check_classes(source_dir, target_dir)
    common = (names, size, seed, test_fraction, color_mode)
    return (
        _split(source_dir, "source", *common),
        _split(target_dir, "target", *common),
    )


def register_folder_pair(
    name: str,
    source_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    *,
    test_fraction: float = 0.3,
    shift: str = "",
    overwrite: bool = False,
) -> None:
    """Registers `folder_pair(source_dir, target_dir)` as the domain pair ``name``.

    The folders are checked now (they exist, with the same two or more class
    subfolders); the images are read when the pair is built (`domain_pair(name,
    size=..., seed=...)`), so a registration is cheap.

    Args:
        name: str. Registry name (lower case, no spaces).
        source_dir: str or path. The labelled source domain.
        target_dir: str or path. The target domain, labelled for scoring.
        test_fraction: float in (0, 1). See `folder_pair`. Defaults to 0.3.
        shift: str. One line on the shift. Defaults to ``"<source> -> <target>"``.
        overwrite: bool. Replace a pair already registered under ``name``.
            Defaults to False.

    Raises:
        ValueError: see `folder_pair` and `register_domain_pair`.

    Examples:
    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.datasets import domain_pair, register_folder_pair
    root = Path(tempfile.mkdtemp())
    for domain in ("a", "b"):
        for label in ("x", "y"):
            (root / domain / label).mkdir(parents=True)
            for i in range(3):
                keras.utils.save_img(
                    root / domain / label / f"{i}.png", np.zeros((8, 8, 3), "uint8")
                )
    register_folder_pair("my_pair", root / "a", root / "b", overwrite=True)
    source, target = domain_pair("my_pair", size=4)
    assert source.x_train.shape[1:] == (4, 4, 3)
    from keras_transfer.datasets.registry import _PAIRS
    _PAIRS.pop("my_pair")  # (this example leaves the registry as it found it)
    ```
    """
    names = _check_classes(source_dir, target_dir)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"Expected test_fraction in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    source_dir, target_dir = os.fspath(source_dir), os.fspath(target_dir)

    def build(size: int = 32, seed: int = 0) -> tuple[DomainSplit, DomainSplit]:
        return folder_pair(
            source_dir, target_dir, size=size, seed=seed, test_fraction=test_fraction
        )

    register_domain_pair(
        name,
        build,
        num_classes=len(names),
        shift=shift or f"{source_dir} -> {target_dir}",
        overwrite=overwrite,
    )
