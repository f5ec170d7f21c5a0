import math

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.adaptation import (
    DANNLearningRateSchedule,
    DomainLambdaScheduler,
    dann_lambda,
)
from keras_transfer.layers import GradientReversal


def test_dann_lambda_values():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_lambda(1.0) == pytest.approx(0.9999092, abs=1e-6)
    assert dann_lambda(2.0) == dann_lambda(1.0)  # clipped progress
    assert dann_lambda(0.1, gamma=10, lambda_max=0.3) == pytest.approx(
        0.3 * (2 / (1 + math.exp(-1)) - 1)
    )


def test_scheduler_sets_lambda_each_batch_and_logs_it():
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(1)(GradientReversal(lambda_=0.0, name="grl")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(model.get_layer("grl").lambda_)

    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    history = model.fit(
        x,
        y,
        batch_size=2,
        epochs=2,
        verbose=0,
        callbacks=[DomainLambdaScheduler(), Spy()],
    )
    expected = [dann_lambda(i / 8) for i in range(8)]
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-7)
    assert history.history["lambda"][-1] == pytest.approx(expected[-1], rel=1e-5)


def test_scheduler_needs_a_schedulable_layer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="GradientReversal"):
        model.fit(
            np.zeros((4, 2)),
            np.zeros((4, 1)),
            verbose=0,
            callbacks=[DomainLambdaScheduler()],
        )


def test_learning_rate_annealing():
    schedule = DANNLearningRateSchedule(0.01, decay_steps=100, alpha=10, beta=0.75)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 / 6**0.75, rel=1e-6)
    assert float(schedule(500)) == pytest.approx(0.01 / 11**0.75, rel=1e-6)
    clone = DANNLearningRateSchedule.from_config(schedule.get_config())
    assert float(clone(50)) == pytest.approx(float(schedule(50)))
    with pytest.raises(ValueError, match="decay_steps"):
        DANNLearningRateSchedule(0.01, decay_steps=0)
