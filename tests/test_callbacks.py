"""The majority-class check: warns on a run that learned nothing, stays quiet otherwise."""

import warnings

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.callbacks import (
    MajorityClassCheck,
    check_against_majority,
    check_fit_history,
    majority_rate,
)


def test_majority_rate():
    assert majority_rate([0, 0, 0, 1]) == 0.75
    assert majority_rate(np.eye(3)[[0, 1, 1, 2]]) == 0.5
    assert majority_rate([]) == 0.0


def test_message_names_both_numbers(caplog):
    with caplog.at_level("WARNING", logger="keras_transfer"):
        with pytest.warns(UserWarning) as record:
            assert check_against_majority(0.25, [0, 1, 2, 3], context="(run x)")
    message = str(record[0].message)
    assert message.startswith(
        "final accuracy 0.250 is no better than always predicting the majority "
        "class (0.250)"
    )
    assert "keras-transfer pretrain" in message and message.endswith("(run x)")
    assert caplog.records and "majority class" in caplog.records[0].getMessage()


def test_no_warning_when_better():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_against_majority(0.6, [0, 0, 1, 2])  # majority 0.5
        assert not check_against_majority(float("nan"), [0, 1])


def test_fit_history_prefers_validation():
    y = np.array([0, 1, 2, 3])
    hist = {"accuracy": [0.9], "val_accuracy": [0.25]}
    with pytest.warns(UserWarning, match="majority class"):
        assert check_fit_history(hist, (None, y), (None, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Datasets: labels unknown, nothing checked; multi-label targets skipped.
        assert not check_fit_history(hist, object(), object())
        multi_hot = np.array([[1, 1, 0], [0, 1, 1]])
        assert not check_fit_history({"accuracy": [0.1]}, (None, multi_hot))


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, "softmax")])
    model.compile(
        keras.optimizers.Adam(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_callback_warns_on_constant_inputs():
    y = np.arange(16) % 2
    check = MajorityClassCheck(y, monitor="val_accuracy")  # no validation: accuracy
    with pytest.warns(UserWarning, match="majority class"):
        _model().fit(np.ones((16, 2)), y, epochs=2, verbose=0, callbacks=[check])
    assert check.warned


def test_callback_quiet_when_learning():
    keras.utils.set_random_seed(0)
    y = np.arange(32) % 2
    x = np.stack([y * 2.0 - 1.0, np.zeros(32)], axis=-1).astype("float32")
    check = MajorityClassCheck(y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*majority class.*")
        _model().fit(
            x, y, validation_data=(x, y), epochs=20, verbose=0, callbacks=[check]
        )
    assert not check.warned


@pytest.mark.parametrize(
    "module",
    [
        "keras_transfer.callbacks",
        "keras_transfer.backbones.base",
        "keras_transfer.pretrain",
    ],
)
def test_docstring_examples_run(module):
    import importlib
    import inspect
    import re

    mod = importlib.import_module(module)
    blocks = [
        block
        for obj in vars(mod).values()
        if getattr(obj, "__module__", None) == module
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        for block in re.findall(r"```python\n(.*?)```", inspect.getdoc(obj) or "", re.S)
    ]
    assert blocks
    for block in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(block, f"<{module} docstring>", "exec"), {})


def test_save_model_checkpoint_refuses_other_formats():
    from keras_transfer.callbacks import SaveModelCheckpoint

    with pytest.raises(ValueError, match=r"ending in '\.keras'"):
        SaveModelCheckpoint("last.h5")


def test_without_a_configured_log_the_warning_is_shown_once(capsys, monkeypatch):
    import logging

    # no handler anywhere above it: Python's last-resort handler would print the
    # log record next to the warning
    monkeypatch.setattr(logging.getLogger("keras_transfer"), "propagate", False)
    with pytest.warns(UserWarning, match="majority class"):
        assert check_against_majority(0.25, [0, 1, 2, 3])
    assert "majority class" not in capsys.readouterr().err
