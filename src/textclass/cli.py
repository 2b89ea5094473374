"""The ``textclass`` command line: a thin layer over the Python API.

Every command is a few lines that call a function a user could call too. Errors from the
``textclass.errors`` family are printed on one line and give exit status 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from textclass import __version__
from textclass.errors import TextclassError

app = typer.Typer(
    name="textclass",
    help="Practical text classification: train, evaluate, compare and serve text classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"textclass {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Practical text classification: train, evaluate, compare and serve text classifiers."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 failure, 2 bad input or usage, 130 interrupted)."""
    try:
        app(args=argv, prog_name="textclass")
    except SystemExit as e:  # Typer's own exits: --help, usage errors (2), typer.Exit(n)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except TextclassError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True, markup=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
