"""The ``eelsbatch`` command line: a thin Typer layer over the Python API.

Each command parses its options and calls one function of the package. Any
:class:`~eelsbatch.errors.EelsbatchError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from eelsbatch.errors import EelsbatchError

app = typer.Typer(
    help="Find core-loss edges in every pixel of EELS spectrum images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Find core-loss edges in every pixel of EELS spectrum images."""


def main() -> None:
    """Console entry point: run the app, turning input errors into one-line messages."""
    try:
        app()
    except EelsbatchError as error:
        print(f"eelsbatch: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("eelsbatch: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
