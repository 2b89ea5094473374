"""Writing files so that nothing already saved is damaged, and checking them by digest.

Every file textclass writes (run directories, reports, predictions) goes through a temporary
file in the same folder and an atomic rename: an interrupted run leaves the earlier file whole.
Temporary names carry the writer's process id, so a later run can tell what a killed one left
(:func:`stale`) and clean it up.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (data sets and model weights can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_files(folder: Path, files: dict[str, str], manifest: Path, what: str) -> None:
    """Check every ``name -> sha256`` of a manifest before anything in ``folder`` is parsed: a file
    outside the folder, missing, tampered with or truncated is a ModelFileError naming it."""
    from textclass.errors import ModelFileError

    root = folder.resolve()
    for name, digest in files.items():
        f = folder / name
        if not f.resolve().is_relative_to(root):
            raise ModelFileError(f"{manifest}: file {name!r} lies outside the {what}")
        if not f.is_file():
            raise ModelFileError(f"{f}: missing")
        if sha256_file(f) != digest:
            raise ModelFileError(f"{f}: sha256 does not match the manifest (tampered or truncated)")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None, binary: bool = False) -> Iterator[IO]:
    """Open a UTF-8 text file (or a binary one) for writing that replaces ``path`` only when the
    block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in stale(path.parent, f".{path.name}."):
        leftover.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline=newline)) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_open(path) as f:
        f.write(text)


def check_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is an existing file."""
    from textclass.errors import ParameterError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ParameterError(f"{option} {path}: exists and is a file, not a folder; choose another {option}")
    return path


def check_out_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """Refuse, before any work, an output file that is an existing folder or whose parent is a file."""
    from textclass.errors import ParameterError

    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{option} {path}: is a folder; give a file name such as {path / 'predictions.jsonl'}")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ParameterError(f"{option} {path}: {parent} is a file, not a folder")
    return path


def temp_name(prefix: str) -> str:
    """A hidden temporary name ``{prefix}{pid}-{random}`` that :func:`stale` can recognise."""
    return f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def stale(parent: Path, prefix: str) -> list[Path]:
    """Entries of ``parent`` named by :func:`temp_name` (or :func:`atomic_open`) with ``prefix``
    whose process is gone: what a killed run left behind."""
    found = []
    for p in parent.glob(f"{glob.escape(prefix)}*") if parent.is_dir() else ():
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            found.append(p)
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
