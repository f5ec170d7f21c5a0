"""`make_encoder`, as `keras_transfer.adaptation` has always exported it.

It lives in `keras_transfer.encoders` (a building block) since few-shot learning
makes its encoder the same way; this module keeps the import path
``keras_transfer.adaptation.encoders`` working.
"""

from keras_transfer.encoders import make_encoder

__all__ = ["make_encoder"]
