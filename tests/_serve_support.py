"""Shared by the serve tests: tiny models trained on real data, and a real uvicorn server in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import real_dataset

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")

TINY_CNN = {"epochs": 1, "batch_size": 32, "maxlen": 16, "num_words": 2000, "embedding_dim": 8,
            "num_filters": 8, "kernel_size": 3, "dense_units": 4}


def yelp(n: int = 600):
    df = real_dataset("uci-sentiment")
    return df[df.source == "yelp"].head(n)


def train_bow_run(folder: Path) -> Path:
    """A real run directory (model/ + metrics.json) of bow-logreg on the yelp sentences."""
    from textclass.train import train_run

    return train_run(yelp(), "bow-logreg", folder / "bow", test_size=0.25, seed=0).out_dir


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 at a free port; yields the base URL, stops at the end."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
