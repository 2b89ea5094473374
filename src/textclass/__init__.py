"""textclass: practical text classification, from labelled text to a deployable classifier."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Keras reads its backend once, on first import: choose JAX unless the user already chose.
os.environ.setdefault("KERAS_BACKEND", "jax")
