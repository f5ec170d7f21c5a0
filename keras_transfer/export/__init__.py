"""Export to TF Serving (SavedModel) and to phones (TFLite/LiteRT), always verified.

Every export writes to a temporary sibling directory, runs the written artifact,
compares it with the Keras model (top-1 agreement, max |diff|, latency), and only then
moves it into place with a ``manifest.json`` (formats, I/O specs, class names, sha256 of
every file, versions, verification numbers, training metrics).

Examples:
```python
import tempfile

import keras
import numpy as np

from keras_transfer.export import export_saved_model, export_tflite, load_tflite

inputs = keras.Input((6,))
model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
folder = tempfile.mkdtemp()
phone = export_tflite(model, f"{folder}/tflite-float32", verify_data=x)
server = export_saved_model(model, f"{folder}/saved_model", verify_data=x)
assert phone.verified and server.verified  # each file was run and compared
print(load_tflite(phone.path).predict(x[:2]))  # (2, 2) probabilities
```
"""

from keras_transfer.export.main import export_main, load_array_file
from keras_transfer.export.predictor import TFLitePredictor, load_tflite
from keras_transfer.export.report import (
    CorruptedExportError,
    ExportReport,
    ExportVerificationError,
    UnsupportedOpError,
)
from keras_transfer.export.saved_model import export_saved_model
from keras_transfer.export.tflite import export_tflite
from keras_transfer.layers.training_only import (
    is_training_only,
    register_training_only_layer,
)

__all__ = [
    "CorruptedExportError",
    "ExportReport",
    "ExportVerificationError",
    "TFLitePredictor",
    "UnsupportedOpError",
    "export_main",
    "export_saved_model",
    "export_tflite",
    "is_training_only",
    "load_array_file",
    "load_tflite",
    "register_training_only_layer",
]
