"""Makes sure Keras runs on the TensorFlow backend before anything else imports it.

Every module of keras-transfer that needs Keras imports it from here::

    from keras_transfer._backend import keras

so the backend is chosen (``KERAS_BACKEND=tensorflow`` unless the user set one) and
checked exactly once, with a clear message when another backend is active.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _refuse(active: str) -> ImportError:
    return ImportError(
        "keras-transfer needs Keras 3 with the TensorFlow backend, but the active "
        f"Keras backend is {active!r} (KERAS_BACKEND="
        f"{os.environ.get('KERAS_BACKEND')!r}). Set KERAS_BACKEND=tensorflow before "
        "importing keras or keras_transfer, or edit ~/.keras/keras.json."
    )


# Refuse before importing keras, which would try to import the other backend.
if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise _refuse(os.environ["KERAS_BACKEND"])

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":  # keras was imported earlier, elsewhere
    raise _refuse(keras.backend.backend())

import tensorflow as tf  # noqa: E402

from keras_transfer._lazy_registry import install  # noqa: E402

# keras.saving.load_model finds every keras-transfer class, imported or not
install(keras.saving.get_custom_objects())

__all__ = ["keras", "tf"]
