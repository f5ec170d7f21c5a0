"""keras_transfer.trainability: the record of frozen layers, applied to a rebuilt model."""

from __future__ import annotations

import pytest

from keras_transfer.trainability import apply_trainable_record, trainable_record


def test_trainable_record_that_does_not_match_warns(caplog):
    from keras_transfer._backend import keras

    def dense(n):
        return keras.Sequential(
            [keras.Input((3,))] + [keras.layers.Dense(2) for _ in range(n)]
        )

    small, large = dense(1), dense(2)
    small.layers[0].trainable = False
    with caplog.at_level("WARNING", logger="keras_transfer"):
        changed = apply_trainable_record(large, trainable_record(small))
    assert changed == 1 and not large.layers[0].trainable and large.layers[1].trainable
    assert "1 layers not recorded" in caplog.text
    with pytest.raises(KeyError):
        apply_trainable_record(large, {"version": 1})
    caplog.clear()
    with caplog.at_level("WARNING", logger="keras_transfer"):
        assert apply_trainable_record(large, {"version": 99}) == 0
    assert "unknown trainable record version 99" in caplog.text


def test_record_is_applied_parents_first_and_keeps_marks():
    from keras_transfer._backend import keras

    def nested():
        inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)], name="in")
        return keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(2)])

    model = nested()
    inner = model.layers[0]
    inner.trainable = False
    inner.layers[0].trainable = True  # a trainable child under a frozen parent
    inner.layers[0]._kt_example_mark = True
    record = trainable_record(model)
    rebuilt = nested()
    # The parent is frozen (freezing its children), then the child set back.
    assert apply_trainable_record(rebuilt, record) == 2
    assert not rebuilt.layers[0].trainable and rebuilt.layers[0].layers[0].trainable
    assert rebuilt.layers[0].layers[0]._kt_example_mark is True
    assert len(rebuilt.trainable_variables) == len(model.trainable_variables)


def test_a_layer_reached_twice_counts_once_and_weightless_layers_are_left_out(caplog):
    from keras_transfer._backend import keras

    def build(with_attribute):
        backbone = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dropout(0.1)],
            name="bb",
        )
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
        if with_attribute:
            model.backbone = backbone  # what the builders set: tracked again
        return model

    model = build(True)
    model.backbone.trainable = False
    record = trainable_record(model)
    keys = [key for key, *_ in record["layers"]]
    assert keys == ["0:Sequential", "0:Sequential/0:Dense", "1:Dense"]
    rebuilt = build(False)  # as load_model rebuilds it: no attribute
    with caplog.at_level("WARNING", logger="keras_transfer"):
        apply_trainable_record(rebuilt, record)
    assert "did not match" not in caplog.text
    assert [v.path for v in rebuilt.trainable_variables] == [
        v.path for v in rebuilt.layers[-1].trainable_variables
    ]
