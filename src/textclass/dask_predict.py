"""Predicting files on a Dask cluster: one task per part of the input, a Parquet file per task.

The inputs are cut into parts (a file, or for Parquet runs of row groups of about ``PART_ROWS``
rows) and each part is one task, read by the same code as in one process
(:func:`textclass.predict.read_input`), so the columns chosen, the ``row`` numbers and the
errors are the same. Each worker process loads the model once, from the run directory through
:func:`textclass.predict.load_predictor` (every file checked against its manifest, nothing
unpickled), and keeps it for the following tasks; only paths travel to the workers. Parts are
written by the workers into a temporary folder beside the output, which is renamed into place
when every part is done, so the input, the run directory and the output must be on a file
system every worker sees (always true of ``"local"``).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textclass.errors import DataError, MissingExtraError, ParameterError
from textclass.files import sha256_file, temp_name
from textclass.predict import (
    InputFile,
    load_predictor,
    predict_frame,
    prediction_schema,
    progress_line,
    read_input,
)
from textclass.runtime import MANIFEST  # the same name for run directories and exports

PART_ROWS = 1 << 17  # rows of Parquet row groups gathered into one task
CONNECT_TIMEOUT = "10s"

_loaded: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Part:
    """One task's share of the input: a file, or some row groups of a Parquet file."""

    file: InputFile
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0


def plan_parts(files: Sequence[InputFile], part_rows: int | None = None) -> list[Part]:
    """Parts in input order: each text file whole, each Parquet file in runs of row groups of at
    least ``part_rows`` rows (default ``PART_ROWS``; read from its footer, not its data)."""
    import pyarrow.parquet as pq

    part_rows = part_rows or PART_ROWS
    parts = []
    for file in files:
        if file.path.suffix.lower() != ".parquet":
            parts.append(Part(file))
            continue
        try:
            meta = pq.ParquetFile(file.path).metadata
        except Exception as e:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
            raise DataError(f"{file.path}: not a readable Parquet file ({' '.join(str(e).split())})") from None
        groups: list[int] = []
        first = row = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            row += meta.row_group(g).num_rows
            if row - first >= part_rows or g == meta.num_row_groups - 1:
                parts.append(Part(file, tuple(groups), first))
                groups, first = [], row
        if meta.num_row_groups == 0:
            parts.append(Part(file, ()))
    return parts


def predict_files_dask(model: str | os.PathLike, files: Sequence[InputFile], output: str | os.PathLike | None, *,
                       dask: Any = "local", jobs: int | None = None, chunk_size: int = 2048,
                       progress: Callable[[str], None] | None = None) -> int:
    """Predict checked input files (see :func:`textclass.predict.predict_files`) on a Dask cluster
    into the folder ``output`` of ``part-00000.parquet``, ... in input order.

    ``dask``: ``"local"`` starts a LocalCluster of ``jobs`` worker processes (default: one per
    core) of one thread each, as Keras/JAX models want; an address connects to a scheduler whose
    workers have textclass installed (start them with ``--nthreads 1``); a ``distributed.Client``
    is used as it is. Returns the number of rows written.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise MissingExtraError(f"textclass predict --dask needs the 'dask' extra ({e.name} is missing): "
                                "pip install 'textclass[dask]'") from None
    from textclass.store import _replace_dir, recover

    if not isinstance(model, str | os.PathLike):
        raise ParameterError("predicting on Dask takes the run directory (each worker loads the model from it), "
                             "not a loaded model")
    out = _check_out(output)
    run = str(Path(model).resolve())
    parts = plan_parts(files)
    recover(out)
    tmp = out.parent / temp_name(f".{out.name}.tmp-")
    tmp.mkdir(parents=True)
    cluster = client = None
    try:
        if isinstance(dask, Client):
            client = dask
        elif dask == "local":
            cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR,
                                   env={"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"})
            client = Client(cluster)
        else:
            try:
                client = Client(str(dask), timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise ParameterError(f"--dask {dask}: cannot reach the scheduler ({' '.join(str(e).split())})") from None
        futures = [client.submit(predict_part, run, part, str(tmp / f"part-{i:05d}.parquet"), chunk_size, pure=False)
                   for i, part in enumerate(parts)]
        index = {future.key: i for i, future in enumerate(futures)}
        start, total, done = time.perf_counter(), 0, 0
        try:
            for future in as_completed(futures):
                rows = future.result()
                total, done = total + rows, done + 1
                if progress is not None:
                    part = parts[index[future.key]]
                    where = f"{part.file.path} rows {part.first_row:,}-{part.first_row + rows - 1:,}"
                    progress(progress_line(f"{done}/{len(parts)} parts", where, total, time.perf_counter() - start))
        except BaseException:
            client.cancel(futures)
            raise
        _replace_dir(tmp, out)
        return total
    finally:
        if client is not None and client is not dask:
            client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)


def predict_part(run: str, part: Part, path: str, chunk_size: int) -> int:
    """A task on a worker: predict one part into the Parquet file ``path``; returns its rows."""
    from textclass.predict import write_parquet

    clf = worker_predictor(run)
    keys = ["file", "row"] + ([part.file.id_col] if part.file.id_col is not None else [])
    frames = read_input(part.file, chunk_size=chunk_size, row_groups=part.row_groups, first_row=part.first_row)
    return write_parquet((predict_frame(clf, f) for f in frames), path, prediction_schema(clf, keys))


def worker_predictor(run: str) -> Any:
    """The model of ``run``, loaded once per process and kept while its manifest is unchanged
    (a run trained again in place is loaded again)."""
    key = (run, _manifest_digest(Path(run)))
    with _lock:
        if key not in _loaded:
            _loaded.clear()
            _loaded[key] = load_predictor(run)
        return _loaded[key]


def _manifest_digest(run: Path) -> str:
    for manifest in (run / "model" / MANIFEST, run / MANIFEST):  # as load_predictor looks
        if manifest.is_file():
            return sha256_file(manifest)
    return ""  # load_predictor says what is missing


def _check_out(output: str | os.PathLike | None) -> Path:
    """The output folder: not a file, and if it exists, only part files of an earlier run (it is
    replaced as a whole)."""
    if output is None:
        raise ParameterError("--dask writes a folder of Parquet part files: give --output FOLDER")
    out = Path(output)
    if out.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        raise ParameterError(f"--output {out}: --dask writes a folder of Parquet part files, not {out.suffix}; "
                             "give a folder name such as predictions/")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--output {out}: exists and is a file; --dask writes a folder of Parquet part files")
    if out.is_dir() and any(not (p.name.startswith("part-") and p.suffix == ".parquet") for p in out.iterdir()):
        raise ParameterError(f"--output {out}: a folder holding other files than part-*.parquet; not replacing it")
    return out

