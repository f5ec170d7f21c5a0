"""Version-guarded fix for Keras ``fit`` under ``MultiWorkerMirroredStrategy``.

Placeholder while the fix is written: ``apply()`` is a no-op for now.
"""

from __future__ import annotations


def apply() -> bool:
    """Applies the fix when needed. Returns True when Keras was patched."""
    return False
