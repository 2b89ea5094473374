"""Predict on texts from arguments, files or a stream, in chunks of bounded memory.

Input: plain text (one text per line: ``.txt``, stdin), or tables with a text column (``.csv``,
``.tsv``, ``.jsonl``, ``.parquet``), any number of them by glob. Output: JSON Lines (default),
CSV or Parquet, one row per text with the predicted label and one probability per class; rows
from files also name their ``file`` and ``row``, so they join back to the input.
``predict_files`` streams files of any total size through a model, in this process or on a Dask
cluster (``textclass.dask_predict``). ``stream_predictions`` answers a live feed line by line.
``load_predictor`` is the one loader that ``predict`` and ``serve`` share.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from textclass.data import TEXT_NAMES, find_text_column, jsonl_row
from textclass.errors import DataError, ParameterError, did_you_mean
from textclass.files import atomic_open

TABLE_READERS = {".csv": ",", ".tsv": "\t"}
SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
STREAM_READ = 1 << 16  # bytes read from a stream at a time: whatever is already there, up to this
PEEK_ROWS = 256  # rows read ahead of a file to choose its text column (the longest string column)
PROGRESS_EVERY = 5.0  # seconds between progress lines within one file


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


# --------------------------------------------------------------------------------------------
# Reading files in frames
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputFile:
    """One input file and the columns read from it (chosen once, for the whole file)."""

    path: Path
    text_col: str
    id_col: str | None = None


def expand_inputs(patterns: Sequence[str | os.PathLike], *, exclude: str | os.PathLike | None = None) -> list[Path]:
    """The files named or matched (glob, ``**`` for any depth) by ``patterns``, in order: sorted
    within a pattern, each file once. A pattern that matches nothing is a DataError; ``exclude``
    (the output) and anything inside it are left out, so a rerun does not read its own output."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, None] = {}
    for pattern in map(str, patterns):
        if glob.has_magic(pattern) and not Path(pattern).is_file():
            matched = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not matched:
                raise DataError(f"{pattern}: no file matches")
        else:
            path = Path(pattern)
            if path.is_dir():
                raise DataError(f"{path}: is a folder; give files or a glob such as {path / '*.parquet'}")
            if not path.is_file():
                raise DataError(f"{path}: no such file (expected a {', '.join(SUFFIXES)} file of texts)")
            matched = [path]
        for path in matched:
            if path.suffix.lower() not in (*SUFFIXES, ""):  # no suffix: text, one per line
                raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r} (expected "
                                f"{', '.join(SUFFIXES)})")
            if skip is None or (path.resolve() != skip and skip not in path.resolve().parents):
                found.setdefault(path, None)
    return list(found)


def inspect_input(path: str | os.PathLike, *, text_col: str | None = None, id_col: str | None = None) -> InputFile:
    """Check a file before any prediction and choose its text column from its first rows (as
    ``find_text_column`` does); a missing column or an unreadable file is a DataError naming it."""
    path = Path(path)
    if path.suffix.lower() in (".txt", ""):
        if id_col is not None:
            raise DataError(f"{path}: a text file has no columns, so no --id-col {id_col!r}")
        return InputFile(path, "text")
    first = next(_frames(path, PEEK_ROWS), None)
    if first is None:  # no rows and no columns (an empty JSON Lines or Parquet file): nothing to predict
        return InputFile(path, text_col or "text", id_col)
    if first.empty and text_col is None:  # a header and no rows: any column reads as nothing
        text = next((c for c in first.columns if c.lower() in TEXT_NAMES), first.columns[0])
    else:
        text = find_text_column(first, path, text_col)
    if id_col is not None and id_col not in first.columns:
        columns = [str(c) for c in first.columns]
        raise DataError(f"{path}: no id column {id_col!r}{did_you_mean(id_col, columns)}; columns are: "
                        f"{', '.join(columns)}")
    return InputFile(path, text, id_col)


def read_input(file: InputFile, *, chunk_size: int = 2048, row_groups: Sequence[int] | None = None,
               first_row: int = 0) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_size`` rows with columns ``file``, ``row``, the id column (as
    text) if any, and ``text``. ``row`` counts from 0: the data row of a CSV/TSV (header not
    counted), the row of a Parquet file, the non-blank line of a JSON Lines or text file.
    ``row_groups`` reads only those row groups of a Parquet file, whose first row is ``first_row``."""
    columns = [file.text_col] + ([file.id_col] if file.id_col and file.id_col != file.text_col else [])
    row = first_row
    for frame in _frames(file.path, chunk_size, columns, row_groups):
        if frame.empty:
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{file.path}: no column {missing[0]!r} in rows {row}-{row + len(frame) - 1} "
                            f"(the file's first rows have it)")
        out = pd.DataFrame({"file": str(file.path), "row": np.arange(row, row + len(frame), dtype=np.int64)})
        if file.id_col is not None:
            out[file.id_col] = [None if _missing(v) else str(v) for v in frame[file.id_col]]
        out["text"] = frame[file.text_col].fillna("").astype(str).to_numpy()
        row += len(frame)
        yield out


def iter_text_chunks(
    source: str | Path | TextIO, *, text_col: str | None = None, chunk_size: int = 2048
) -> Iterator[list[str]]:
    """Yield lists of at most ``chunk_size`` texts from a file path or an open text stream."""
    if not isinstance(source, str | Path):
        yield from _line_chunks(source, chunk_size)
        return
    (path,) = expand_inputs([source])
    for frame in read_input(inspect_input(path, text_col=text_col), chunk_size=chunk_size):
        yield frame["text"].tolist()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _frames(path: Path, chunk_size: int, columns: list[str] | None = None,
            row_groups: Sequence[int] | None = None) -> Iterator[pd.DataFrame]:
    """Raw frames of a file, only ``columns`` when given (a column projection for Parquet/CSV)."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ""):
        for texts in _text_file_chunks(path, chunk_size):
            yield pd.DataFrame({"text": texts})
    elif suffix in TABLE_READERS:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty; expected a header line and rows of text")
        yield from _table_frames(path, suffix, chunk_size, columns)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_frames(path, chunk_size, columns)
    elif suffix == ".parquet":
        yield from _parquet_frames(path, chunk_size, columns, row_groups)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (expected {', '.join(SUFFIXES)})")


def _text_file_chunks(path: Path, chunk_size: int) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", errors="replace") as f:
        yield from _line_chunks(f, chunk_size)


def _table_frames(path: Path, suffix: str, chunk_size: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """CSV/TSV in frames, read as ``read_table`` reads them: stray bytes as cp1252, no quoting in
    TSV (a '"' is a character); a malformed file is a DataError."""
    try:
        frames = pd.read_csv(path, sep=TABLE_READERS[suffix], chunksize=chunk_size, dtype=str, usecols=columns,
                             keep_default_na=False, encoding="utf-8-sig", encoding_errors="textclass-stray-bytes",
                             quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL)
        for frame in frames:
            yield frame.rename(columns=str)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed {suffix[1:].upper()}: {' '.join(str(e).split())}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line; expected a header line and rows of text") from None
    except ValueError as e:  # usecols naming a column the header lacks
        raise DataError(f"{path}: {' '.join(str(e).split())}") from None


def _parquet_frames(path: Path, chunk_size: int, columns: list[str] | None = None,
                    row_groups: Sequence[int] | None = None) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=columns, row_groups=row_groups)
        for batch in batches:
            yield batch.to_pandas().rename(columns=str)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(e).split())})") from None


def _jsonl_frames(path: Path, chunk_size: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """JSON Lines in frames of ``chunk_size`` objects. The file must be UTF-8 (as JSON is): a line
    that is not, or is not one JSON object, is a DataError naming the line."""
    rows: list[dict] = []
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: line {n} is not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})") from None
            if not line.strip():
                continue
            row = jsonl_row(path, n, line, '{"text": ...}')
            rows.append(row if columns is None else {c: row.get(c) for c in columns if c in row})
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows)
                rows = []
    if rows:
        yield pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Predicting and writing
# --------------------------------------------------------------------------------------------
def predict_frame(clf: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (with a ``text`` column) plus ``label`` and ``p_<class>`` per class."""
    proba = np.asarray(clf.predict_proba(frame["text"].tolist()))
    frame = frame.copy()
    frame["label"] = list(clf.labels_from_proba(proba))
    for j, name in enumerate(clf.classes_):
        frame[f"p_{name}"] = proba[:, j].round(6)
    return frame


def predict_chunks(clf: Any, chunks: Iterable[list[str]]) -> Iterator[pd.DataFrame]:
    """Predict each chunk: columns ``text``, ``label`` and ``p_<class>`` per class."""
    for texts in chunks:
        if texts:
            yield predict_frame(clf, pd.DataFrame({"text": texts}))


def prediction_schema(clf: Any, key_columns: Sequence[str] = ()) -> Any:
    """The Arrow schema of prediction frames: ``key_columns`` (``file``, ``row``, an id column),
    ``text``, ``label`` (a list of tags for multi-label models) and a float per class. Fixed from
    the model, so every chunk and every part file of one run has the same schema."""
    import pyarrow as pa

    keys = {"file": pa.string(), "row": pa.int64()}
    label = pa.array(list(np.asarray(clf.classes_))).type
    if clf.task_ == "multilabel":
        label = pa.list_(label)
    fields = [(c, keys.get(c, pa.string())) for c in key_columns]
    fields += [("text", pa.string()), ("label", label)]
    fields += [(f"p_{name}", pa.float64()) for name in clf.classes_]
    return pa.schema(fields)


def output_format(output: str | os.PathLike | None) -> str:
    """``csv``, ``parquet`` or ``jsonl`` (the default, and stdout's) from the output's suffix."""
    suffix = Path(output).suffix.lower() if output is not None else ""
    return {".csv": "csv", ".parquet": "parquet"}.get(suffix, "jsonl")


def write_predictions(frames: Iterable[pd.DataFrame], output: str | Path | None = None, *,
                      schema: Any = None) -> int:
    """Write prediction frames as JSONL (default, and to stdout), CSV (``.csv``) or Parquet
    (``.parquet``; ``schema`` from :func:`prediction_schema`, else the first frame's).

    A file is written through a temporary file and renamed at the end, so an interrupted run or
    a bad input file never leaves a partial file in place of an earlier one. Returns the number
    of rows.
    """
    fmt = output_format(output)
    if output is None:
        return _write_rows(frames, sys.stdout, fmt)
    if fmt == "parquet":
        with atomic_open(output, binary=True) as f:
            return write_parquet(frames, f, schema)
    with atomic_open(output, newline="") as f:
        return _write_rows(frames, f, fmt)


def write_parquet(frames: Iterable[pd.DataFrame], sink: Any, schema: Any = None) -> int:
    """Write frames to one Parquet file (a path or a binary file object), a row group per frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    count, writer = 0, None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(sink, table.schema)
            writer.write_table(table)
            count += len(frame)
        if writer is None and schema is not None:  # no rows: a file with the columns only
            writer = pq.ParquetWriter(sink, schema)
    finally:
        if writer is not None:
            writer.close()
    return count


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
            out.writelines(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n"
                           for row in frame.to_dict(orient="records"))
        count += len(frame)
    return count


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def predict_files(
    model: Any,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    *,
    text_col: str | None = None,
    id_col: str | None = None,
    chunk_size: int = 2048,
    dask: Any = None,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Predict every text of the files named or matched by ``inputs``, in bounded memory.

    Each file is read ``chunk_size`` rows at a time (Parquet by record batches, CSV/TSV by pandas
    chunks, JSON Lines and text by lines), predicted, and written at once to ``output``: JSON Lines
    (default; stdout when ``output`` is None), CSV or Parquet by its suffix. Rows carry ``file`` and
    ``row`` (see :func:`read_input`) and ``id_col`` when given. Every file is checked (its text
    column chosen) before the first prediction, and the output is renamed into place only when
    all went well: a bad file raises DataError naming it and leaves no partial output.

    Parameters
    ----------
    model : a run directory, model directory or export (loaded with :func:`load_predictor`), or
        a loaded model (in this process only).
    inputs : paths or glob patterns (``"data/*.parquet"``, ``"corpus/**/*.jsonl"``); formats may mix.
    dask : ``"local"`` (a LocalCluster of ``jobs`` one-thread worker processes, default one per
        core), a scheduler address, or a ``distributed.Client``. ``output`` is then a folder of
        Parquet part files; see :func:`textclass.dask_predict.predict_files_dask`.
    progress : called with one line of progress per file (and every few seconds within a file).

    Returns the number of rows written.
    """
    if chunk_size < 1:
        raise ParameterError(f"chunk_size must be at least 1, got {chunk_size}")
    if id_col is not None and (id_col in ("file", "row", "text", "label") or id_col.startswith("p_")):
        raise ParameterError(f"--id-col {id_col!r}: the output has a column of that name; the id column "
                             "must be another")
    patterns = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if not patterns:
        raise ParameterError("no input: give one or more files or glob patterns")
    files = [inspect_input(p, text_col=text_col, id_col=id_col) for p in expand_inputs(patterns, exclude=output)]
    if dask is not None:
        from textclass.dask_predict import predict_files_dask

        return predict_files_dask(model, files, output, dask=dask, jobs=jobs, chunk_size=chunk_size,
                                  progress=progress)
    clf = load_predictor(model) if isinstance(model, str | os.PathLike) else model
    keys = ["file", "row"] + ([id_col] if id_col is not None else [])
    schema = prediction_schema(clf, keys) if output_format(output) == "parquet" else None
    return write_predictions(_predicted(clf, files, chunk_size, progress), output, schema=schema)


def _predicted(clf: Any, files: list[InputFile], chunk_size: int,
               progress: Callable[[str], None] | None) -> Iterator[pd.DataFrame]:
    start = last = time.perf_counter()
    total = 0
    for i, file in enumerate(files, 1):
        rows = 0
        for frame in read_input(file, chunk_size=chunk_size):
            yield predict_frame(clf, frame)
            rows += len(frame)
            total += len(frame)
            if progress is not None and time.perf_counter() - last >= PROGRESS_EVERY:
                last = time.perf_counter()
                progress(progress_line(f"{i}/{len(files)} files", f"{file.path} row {rows:,}", total, last - start))
        if progress is not None:
            last = time.perf_counter()
            progress(progress_line(f"{i}/{len(files)} files", f"{file.path}: {rows:,} rows", total, last - start))


def progress_line(count: str, what: str, total: int, seconds: float) -> str:
    """``predict [3/12 files] data/c.parquet: 20,000 rows; 60,000 in all, 41,000/s``"""
    return f"predict [{count}] {what}; {total:,} in all, {total / max(seconds, 1e-9):,.0f}/s"


# --------------------------------------------------------------------------------------------
# Lines from a stream
# --------------------------------------------------------------------------------------------
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
