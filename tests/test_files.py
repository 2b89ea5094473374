"""Atomic writes: a failure while writing leaves the earlier file whole and no temporary behind."""

from __future__ import annotations

import hashlib

import pytest

from textclass.files import atomic_open, sha256_file, write_text_atomic


def test_write_replaces_the_file_and_digest_matches(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
    assert sha256_file(path) == hashlib.sha256(b"second").hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_failure_mid_write_keeps_the_earlier_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    write_text_atomic(path, "earlier\n")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"]
