"""Export to TF Serving (SavedModel) and to phones (TFLite/LiteRT), always verified.

Every export writes to a temporary sibling directory, runs the written artifact,
compares it with the Keras model (top-1 agreement, max |diff|, latency), and only then
moves it into place with a ``manifest.json`` (formats, I/O specs, class names, sha256 of
every file, versions, verification numbers, training metrics).

Examples:
```python
from keras_transfer.export import export_tflite, load_tflite

report = export_tflite(model, "saved_models/digits/tflite-int8",
                       quantization="int8", representative_data=x_train[:200],
                       verify_data=(x_test, y_test), class_names=list("0123456789"))
print(report.summary())
predictor = load_tflite(report.path)
predictor.predict_classes(x_test[:4])
```
"""

from keras_transfer.export._inference import (
    is_training_only,
    register_training_only_layer,
)
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
