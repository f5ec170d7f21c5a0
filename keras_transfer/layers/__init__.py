"""Reusable Keras layers of keras-transfer (one class per module)."""

from keras_transfer.layers.gradient_reversal import GradientReversal, SchedulableLambda

__all__ = ["GradientReversal", "SchedulableLambda"]
