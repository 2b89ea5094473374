"""Predict on texts from arguments, files or a stream, in chunks of bounded memory.

Input: plain text (one text per line: ``.txt``, stdin), or a table with a text column (``.csv``,
``.tsv``, ``.jsonl``, ``.parquet``). Output: JSON Lines (default) or CSV, one row per text with the
predicted label and one probability per class. ``stream_predictions`` answers a live feed line by
line. ``load_predictor`` is the one loader that ``predict`` and ``serve`` share.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from textclass.data import find_text_column, jsonl_row
from textclass.errors import DataError
from textclass.files import atomic_open

TABLE_READERS = {".csv": ",", ".tsv": "\t"}
STREAM_READ = 1 << 16  # bytes read from a stream at a time: whatever is already there, up to this


def load_predictor(path: str | Path) -> Any:
    """Load what ``predict``, ``evaluate``, ``explain`` and ``serve`` run: a run directory or the
    model directory inside it (``textclass.store.load_model``), or an ONNX export
    (``textclass.runtime.load``); every file is verified against its manifest either way."""
    from textclass.runtime import is_export, load
    from textclass.store import MANIFEST, load_model

    path = Path(path)
    if is_export(path):
        return load(path)
    return load_model(path / "model" if (path / "model" / MANIFEST).is_file() else path)


def iter_text_chunks(
    source: str | Path | TextIO, *, text_col: str | None = None, chunk_size: int = 2048
) -> Iterator[list[str]]:
    """Yield lists of at most ``chunk_size`` texts from a file path or an open text stream."""
    if not isinstance(source, str | Path):
        yield from _line_chunks(source, chunk_size)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a .txt, .csv, .tsv, .jsonl or .parquet file of texts)")
    suffix = path.suffix.lower()
    if suffix in (".txt", ""):
        with path.open(encoding="utf-8", errors="replace") as f:
            yield from _line_chunks(f, chunk_size)
        return
    if suffix in TABLE_READERS:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty; expected a header line and rows of text")
        reader = _table_frames(path, suffix, chunk_size)
    elif suffix in (".jsonl", ".ndjson"):
        reader = _jsonl_frames(path, chunk_size)
    elif suffix == ".parquet":
        reader = _parquet_frames(path, chunk_size)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (expected .txt, .csv, .tsv, .jsonl or .parquet)")
    for frame in reader:
        frame = frame.rename(columns=str)
        yield frame[find_text_column(frame, path, text_col)].fillna("").astype(str).tolist()


def _table_frames(path: Path, suffix: str, chunk_size: int) -> Iterator[pd.DataFrame]:
    """CSV/TSV in frames, read as ``read_table`` reads them: stray bytes as cp1252, no quoting in
    TSV (a '"' is a character); a malformed file is a DataError."""
    try:
        yield from pd.read_csv(path, sep=TABLE_READERS[suffix], chunksize=chunk_size, dtype=str,
                               keep_default_na=False, encoding="utf-8-sig", encoding_errors="textclass-stray-bytes",
                               quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed {suffix[1:].upper()}: {' '.join(str(e).split())}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line; expected a header line and rows of text") from None


def _parquet_frames(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        for batch in batches:
            yield batch.to_pandas()
    except Exception as e:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(e).split())})") from None


def _jsonl_frames(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """JSON Lines in frames of ``chunk_size`` objects; a malformed line is a DataError naming it."""
    rows: list[dict] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rows.append(jsonl_row(path, n, line, '{"text": ...}'))
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows)
                rows = []
    if rows:
        yield pd.DataFrame(rows)


def predict_chunks(clf: Any, chunks: Iterable[list[str]]) -> Iterator[pd.DataFrame]:
    """Predict each chunk: columns ``text``, ``label`` and ``p_<class>`` per class."""
    for texts in chunks:
        if not texts:
            continue
        proba = np.asarray(clf.predict_proba(texts))
        labels = clf.labels_from_proba(proba)
        frame = pd.DataFrame({"text": texts, "label": list(labels)})
        for j, name in enumerate(clf.classes_):
            frame[f"p_{name}"] = proba[:, j].round(6)
        yield frame


def write_predictions(frames: Iterable[pd.DataFrame], output: str | Path | None = None) -> int:
    """Write prediction frames as JSONL (default, and to stdout) or CSV (``.csv`` output).

    A file is written through a temporary file and renamed at the end, so an interrupted run
    never leaves a truncated file in place of an earlier one. Returns the number of rows.
    """
    fmt = "csv" if output is not None and Path(output).suffix.lower() == ".csv" else "jsonl"
    if output is None:
        return _write_rows(frames, sys.stdout, fmt)
    with atomic_open(output, newline="") as f:
        return _write_rows(frames, f, fmt)


def _write_rows(frames: Iterable[pd.DataFrame], out: TextIO, fmt: str) -> int:
    count = 0
    writer = None
    for frame in frames:
        if fmt == "csv":
            if writer is None:
                writer = csv.writer(out)
                writer.writerow(frame.columns)
            writer.writerows(frame.itertuples(index=False))
        else:
            for row in frame.to_dict(orient="records"):
                out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
        count += len(frame)
    return count


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _line_chunks(stream: TextIO | io.TextIOBase, chunk_size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in stream:
        text = line.rstrip("\r\n")
        if text.strip():
            chunk.append(text)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stream_predictions(clf: Any, fd: int, out: TextIO, *, chunk_size: int = 2048) -> int:
    """Answer a live feed on file descriptor ``fd``: one JSON line per input line, flushed at once.

    Each read takes what the feed already holds (a burst of lines is predicted in one call) but
    never waits for more, so no line is held back. Blank lines are skipped. Returns the row count.
    """
    count = 0
    for texts in _stream_lines(fd):
        for start in range(0, len(texts), chunk_size):
            count += _write_rows(predict_chunks(clf, [texts[start:start + chunk_size]]), out, "jsonl")
        out.flush()
    return count


def _stream_lines(fd: int) -> Iterator[list[str]]:
    """The complete, non-blank lines of each read of ``fd`` (the last line may lack its newline)."""
    pending = b""
    while block := os.read(fd, STREAM_READ):
        *lines, pending = (pending + block).split(b"\n")
        texts = [t for t in (line.decode("utf-8", errors="replace").rstrip("\r") for line in lines) if t.strip()]
        if texts:
            yield texts
    tail = pending.decode("utf-8", errors="replace").rstrip("\r")
    if tail.strip():
        yield [tail]
