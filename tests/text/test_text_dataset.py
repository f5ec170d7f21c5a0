import numpy as np
import pytest

from keras_transfer.datasets.text import (
    list_text_domains,
    sentiment_domains,
    sentiment_reviews,
)


def _words(texts):
    return {w.strip(".,!").lower() for t in texts for w in t.split()}


def test_shapes_balance_and_determinism():
    data = sentiment_reviews("electronics", num_train=40, num_test=20, seed=3)
    assert data.x_train.shape == (40,) and data.x_test.shape == (20,)
    assert all(isinstance(t, str) for t in data.x_train)
    assert data.y_train.dtype == np.int32 and np.bincount(data.y_train).tolist() == [
        20,
        20,
    ]
    again = sentiment_reviews("electronics", num_train=40, num_test=20, seed=3)
    assert list(again.x_train) == list(data.x_train)
    other = sentiment_reviews("electronics", num_train=40, num_test=20, seed=4)
    assert list(other.x_train) != list(data.x_train)


def test_held_out_sentiment_words_never_in_train():
    data = sentiment_reviews("restaurants", num_train=300, num_test=300)
    test_only = {"superb", "atrocious", "abysmal", "outstanding", "lousy", "burnt"}
    assert test_only & _words(data.x_test)
    assert not test_only & _words(data.x_train)


def test_domains_differ():
    source, target = sentiment_domains("restaurants", "electronics", 50, 10)
    assert list_text_domains() == ["electronics", "restaurants"]
    assert "pasta" in " ".join(source.x_train) and "pasta" not in " ".join(
        target.x_train
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="domain"):
        sentiment_reviews("books")
    with pytest.raises(ValueError, match="num_train"):
        sentiment_reviews("electronics", num_train=0)
    with pytest.raises(ValueError, match="different"):
        sentiment_domains("electronics", "electronics")
