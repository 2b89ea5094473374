"""One family of errors, each a message a person can act on.

The CLI prints ``str(error)`` on one line and exits with status 2; the Python API raises them.
Each subclass also derives from the built-in exception a caller would naturally catch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TextclassError(Exception):
    """Base class of every error textclass raises on purpose."""


class DataError(TextclassError, ValueError):
    """Input data that cannot be used as given: names the file, line or column, and what was expected."""


class DatasetError(TextclassError, LookupError):
    """An unknown built-in data set, or one that could not be fetched or verified."""


class ParameterError(TextclassError, ValueError):
    """A hyperparameter or option with an unknown name or an invalid value."""


class ModelFileError(TextclassError, OSError):
    """A saved model that is missing, tampered with, truncated or of an unknown format."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


class TextclassWarning(UserWarning):
    """Something the user should know that does not stop the work (rows dropped, a fallback taken).

    The CLI prints each distinct one once, as ``warning: ...``; library warnings are not shown.
    """


class MissingExtraError(TextclassError, ImportError):
    """An optional feature whose extra is not installed: names the pip command that installs it."""


class LabelWarning(TextclassWarning):
    """A warning about some classes or tags; ``TextClassifier`` names them by the user's labels.

    ``template`` holds ``{labels}``, filled with the labels' reprs when the warning is shown; a
    model fitted on label codes raises it with codes, and ``relabel`` swaps in the names.
    """

    def __init__(self, template: str, labels: Iterable) -> None:
        self.template, self.labels = template, list(labels)
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.template.format(labels=", ".join(repr(label) for label in self.labels))

    def relabel(self, names) -> LabelWarning:
        return type(self)(self.template, [names[int(code)] for code in self.labels])
