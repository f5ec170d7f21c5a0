"""Shared pytest setup: TensorFlow backend, quiet logs, seeded Keras."""

import os
from collections import Counter

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    """Test files with slow end-to-end tests (marked ``large``) run first.

    With ``--dist loadfile`` (``addopts``), pytest-xdist hands each worker one file at a
    time, by default the files with the most tests first. That puts one-test files
    such as the user's CLI path (about 95 s) last, where one worker runs them while
    the other has nothing left. Files with a ``large`` test are sent first instead
    (``--no-loadscope-reorder`` keeps this order), each group by number of tests,
    so the quick files fill in at the end. Each file's tests keep their order.
    """

    def path(item) -> str:
        return item.nodeid.split("::")[0]

    large = {path(item) for item in items if item.get_closest_marker("large")}
    counts = Counter(path(item) for item in items)
    # a stable sort: files stay whole and, between equal keys, in collection order
    items.sort(key=lambda item: (path(item) not in large, -counts[path(item)]))
