"""`text_dataset` (and `check_texts`, which every text entry point uses) keep the
user's text as it is, or say why they cannot."""

import numpy as np
import pytest

from keras_transfer.text import text_dataset
from keras_transfer.text.encoder import check_texts


def _first_batch(ds):
    x, *y = next(iter(ds))
    return x.numpy().tolist(), [v.numpy().tolist() for v in y]


def test_bytes_and_one_column_arrays_become_the_same_strings():
    want = [b"great food", b"bad"]
    for texts in (
        ["great food", "bad"],
        [b"great food", b"bad"],  # were "b'great food'" (str of bytes)
        np.array([["great food"], ["bad"]], dtype=object),  # df[["text"]].values
        np.array(["great food", "bad"]),  # NumPy's unicode dtype
    ):
        x, (y,) = _first_batch(text_dataset(texts, [1, 0], shuffle=False))
        assert x == want and y == [1, 0]


@pytest.mark.parametrize(
    "texts, labels, kwargs, match",
    [
        ("hello", None, {}, "not one string.*wrap it in a list"),
        (["ok", None], [1, 0], {}, "hold strings. Received NoneType None at index 1"),
        ([], [], {}, "non-empty"),
        (np.array([["a", "b"]], dtype=object), None, {}, r"shape \(n,\) or \(n, 1\)"),
        (["a", "b", "c"], [0, 1], {}, "3 texts and 2 labels"),
        (["a", "b"], [0, 1], {"batch_size": 0}, "batch_size to be an int >= 1"),
    ],
)
def test_what_cannot_be_text_is_refused_by_name(texts, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        text_dataset(texts, labels, **kwargs)


def test_check_texts_decodes_and_flattens():
    assert check_texts((b"a", "b")) == ["a", "b"]
    with pytest.raises(ValueError, match="verify_texts to be a sequence"):
        check_texts("abc", "verify_texts")
