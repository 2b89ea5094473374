"""What reaches the terminal when something goes wrong: one line, never a raw traceback.

The CLI runs every command inside :func:`warnings_policy` and turns an unexpected exception into
one line naming the file that holds the full traceback (:func:`write_traceback`). Library
warnings do not reach the terminal: the few that matter are said once in textclass's words.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from textclass.errors import TextclassWarning
from textclass.files import write_text_atomic


def _translations() -> dict[type[Warning], str]:
    """Library warnings worth telling a user, as textclass says them (imported lazily)."""
    from sklearn.exceptions import ConvergenceWarning

    return {
        ConvergenceWarning: "the model's solver stopped before converging (its iteration limit); "
        "scores may be a little lower than a longer fit would give (e.g. -p C=0.1 regularises more)",
    }


@contextlib.contextmanager
def warnings_policy(say: Callable[[str], None]) -> Iterator[None]:
    """Inside this block, textclass's own warnings and the translated library ones go to
    ``say`` once per distinct message; every other warning is dropped, also in the worker
    processes started meanwhile (through ``PYTHONWARNINGS``)."""
    translations = _translations()
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, TextclassWarning):
            text = str(message)
        else:
            text = next((t for c, t in translations.items() if issubclass(category, c)), None)
        if text is not None and text not in seen:
            seen.add(text)
            say(text)

    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"  # worker processes (search -j, compare) print nothing raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for category in (TextclassWarning, *translations):
                warnings.simplefilter("always", category)
            warnings.showwarning = show
            yield
    finally:
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


def traceback_dir() -> Path:
    """Where full tracebacks go: ``$XDG_CACHE_HOME/textclass/tracebacks`` (``~/.cache/...``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "textclass" / "tracebacks"


def write_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s full traceback to a new file (atomically); fall back to the temp folder
    when the cache is not writable. Returns the file."""
    text = "".join(traceback.format_exception(exc))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"traceback-{stamp}-{os.getpid()}.txt"
    for folder in (traceback_dir(), Path(tempfile.gettempdir())):
        try:
            write_text_atomic(folder / name, text)
            return folder / name
        except OSError:
            continue
    raise RuntimeError("cannot write a traceback file anywhere") from exc


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (library messages often span several)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
