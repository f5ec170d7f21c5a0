"""Public API: every exported name resolves; import is light; backend is checked."""

import subprocess
import sys

import keras_transfer


def test_all_names_resolve():
    for name in keras_transfer.__all__:
        assert getattr(keras_transfer, name) is not None, name
    assert keras_transfer.__all__ == sorted(keras_transfer.__all__)


def test_public_callables_are_documented():
    for name in keras_transfer.__all__:
        obj = getattr(keras_transfer, name)
        if callable(obj):
            doc = obj.__doc__ or ""
            assert len(doc.strip()) > 40, f"{name} has no docstring"


def test_import_does_not_load_tensorflow():
    code = "import sys, keras_transfer; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_other_backend_is_refused():
    code = "import keras_transfer.builders"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode != 0
    assert "needs Keras 3 with the TensorFlow backend" in out.stderr
    assert "'jax'" in out.stderr
