"""`folder_pair` / `register_folder_pair`: a domain pair from two image folders."""

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.datasets import (
    domain_pair,
    domain_pair_info,
    folder_pair,
    list_domain_pairs,
    register_domain_pair,
    register_folder_pair,
)
from keras_transfer.datasets.registry import _PAIRS


def _folder(root, classes, per_class=5, value=0):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixel = value + 20 * c + i
            keras.utils.save_img(
                root / name / f"{i}.png",
                np.full((10, 10, 3), pixel, "uint8"),
                scale=False,
            )
    return root


@pytest.fixture
def folders(tmp_path):
    source = _folder(tmp_path / "source", ["cat", "dog", "fox"], value=0)
    target = _folder(tmp_path / "target", ["cat", "dog", "fox"], value=150)
    return source, target


def test_both_domains_are_read_resized_and_split_by_class(folders):
    source, target = folder_pair(*folders, size=6, seed=1, test_fraction=0.4)
    for split, value in ((source, 0), (target, 150)):
        assert split.x_train.dtype == np.uint8 and split.x_train.shape == (9, 6, 6, 3)
        assert split.x_test.shape == (6, 6, 6, 3)
        assert np.bincount(split.y_test).tolist() == [2, 2, 2]  # stratified
        # labels follow the sorted class names in both domains: "dog" is 1
        pixels = np.concatenate([split.x_train, split.x_test])[..., 0, 0, 0]
        labels = np.concatenate([split.y_train, split.y_test])
        np.testing.assert_array_equal((pixels.astype(int) - value) // 20, labels)
    again = folder_pair(*folders, size=6, seed=1, test_fraction=0.4)[0]
    np.testing.assert_array_equal(again.y_train, source.y_train)  # seeded
    other = folder_pair(*folders, size=6, seed=2, test_fraction=0.4)[0]
    assert not np.array_equal(other.y_train, source.y_train)


def test_bad_folders_are_refused_by_name(tmp_path, folders):
    source, target = folders
    with pytest.raises(ValueError, match="target folder .*nowhere.* does not exist"):
        folder_pair(source, tmp_path / "nowhere")
    (target / "owl").mkdir()
    with pytest.raises(
        ValueError,
        match=r"only in the source \[\], only in the "
        r"target \['owl'\]",
    ):
        folder_pair(source, target)
    (source / "owl").mkdir()
    with pytest.raises(ValueError, match=r"no images in \['owl'\]"):
        folder_pair(source, target)
    one = _folder(tmp_path / "one", ["cat"])
    with pytest.raises(ValueError, match="at least 2 class subfolders"):
        folder_pair(one, one)
    with pytest.raises(ValueError, match="test_fraction in"):
        folder_pair(source, target, test_fraction=1.0)
    with pytest.raises(ValueError, match="size to be a positive int"):
        folder_pair(source, target, size=0)
    few = _folder(tmp_path / "few", ["a", "b"], per_class=1)
    with pytest.raises(ValueError, match="too few to split"):
        folder_pair(few, few, test_fraction=0.1)


def test_a_registered_folder_pair_builds_through_the_registry(folders):
    try:
        register_folder_pair("test_own_pair", *folders, test_fraction=0.2)
        assert "test_own_pair" in list_domain_pairs("image")
        info = domain_pair_info("test_own_pair")
        assert info.num_classes == 3 and "->" in info.shift
        source, target = domain_pair("test_own_pair", size=4, seed=0)
        assert source.x_test.shape == (3, 4, 4, 3) and len(target.y_train) == 12
        with pytest.raises(ValueError, match="already registered .*overwrite=True"):
            register_folder_pair("test_own_pair", *folders)
        register_folder_pair(
            "test_own_pair", *folders, test_fraction=0.4, overwrite=True
        )
        assert len(domain_pair("test_own_pair", size=4)[0].y_test) == 6
    finally:
        _PAIRS.pop("test_own_pair", None)


def test_overwrite_replaces_a_registered_builder():
    try:
        register_domain_pair("test_replaced", lambda size, seed: "old")
        register_domain_pair("test_replaced", lambda size, seed: "new", overwrite=True)
        assert domain_pair("test_replaced") == "new"
    finally:
        _PAIRS.pop("test_replaced", None)
