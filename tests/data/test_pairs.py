import numpy as np
import pytest

from keras_transfer._backend import tf
from keras_transfer.data import domain_pairs


def test_shorter_domain_is_repeated_and_batches_pair_up():
    xs, ys = np.arange(10, dtype="float32")[:, None], np.arange(10)
    xt = -np.arange(25, dtype="float32")[:, None]
    batches = list(domain_pairs((xs, ys), xt, batch_size=5, shuffle=False))
    assert len(batches) == 5  # one pass over the larger (target) domain
    x, y = batches[2]
    np.testing.assert_array_equal(x["source"].numpy()[:, 0], y.numpy())  # pairs kept
    assert x["target"].shape == (5, 1)
    seen_t = np.concatenate([b[0]["target"].numpy()[:, 0] for b in batches])
    np.testing.assert_array_equal(np.sort(seen_t), np.sort(xt[:, 0]))


def test_batched_datasets_are_unbatched_and_weights_pass_through():
    xs = np.zeros((12, 4, 4, 3), "float32")
    source = tf.data.Dataset.from_tensor_slices(
        (xs, np.ones(12), np.full(12, 2.0))
    ).batch(5)
    target = tf.data.Dataset.from_tensor_slices(np.ones((8, 4, 4, 3), "float32")).batch(
        3
    )
    x, y, w = next(iter(domain_pairs(source, target, batch_size=4)))
    assert x["source"].shape == (4, 4, 4, 3) and x["target"].shape == (4, 4, 4, 3)
    np.testing.assert_array_equal(w.numpy(), 2.0)


def test_errors():
    xs, ys = np.zeros((6, 3), "float32"), np.zeros(6)
    with pytest.raises(ValueError, match="same shape"):
        domain_pairs((xs, ys), np.zeros((6, 4), "float32"), 2)
    with pytest.raises(ValueError, match="same shape and dtype"):
        domain_pairs((xs, ys), np.array([["a", "b", "c"]] * 6), 2)  # text vs numbers
    labelled_target = tf.data.Dataset.from_tensor_slices((xs, ys))
    with pytest.raises(ValueError, match="target_ds to yield inputs only"):
        domain_pairs((xs, ys), labelled_target, 2)
    with pytest.raises(ValueError, match="source_ds to yield labelled"):
        domain_pairs(xs, xs, 2)
    with pytest.raises(ValueError, match="batch_size"):
        domain_pairs((xs, ys), xs, 0)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        domain_pairs({"a": 1}, xs, 2)


def test_numeric_inputs_of_other_dtypes_meet_as_float32():
    # uint8 source arrays and a float32 target (what from_directory yields), both
    # in [0, 255]: paired as float32, values unchanged
    xs = np.arange(6 * 3, dtype="uint8").reshape(6, 3)
    xt = np.full((4, 3), 255.0, "float32")
    (x, y), *_ = domain_pairs((xs, np.arange(6)), xt, 6, shuffle=False)
    assert x["source"].dtype == x["target"].dtype == tf.float32
    np.testing.assert_array_equal(x["source"].numpy(), xs.astype("float32"))
    assert float(x["target"].numpy().max()) == 255.0
    (x, _), *_ = domain_pairs(
        (xs.astype("float32"), np.arange(6)), xt.astype("float64"), 2
    )
    assert x["target"].dtype == tf.float32
