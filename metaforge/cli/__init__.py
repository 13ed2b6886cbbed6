"""The ``metaforge`` command: thin Typer wrappers over library functions.

Library errors are one exception family; this is the one place that turns them into a one-line
message and an exit code.
"""

from __future__ import annotations

import sys

import typer

from metaforge.errors import MetaforgeError

app = typer.Typer(
    name="metaforge",
    help="One metamorphic network, the right-sized model for every embedded device.\n\n"
    "Typical flow: `metaforge train` -> `metaforge info` -> `metaforge materialize`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from metaforge.cli import bundle, check, export, fit, info, materialize, profile, train  # noqa: F401  (commands register on import)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning library errors into one line and an exit code."""
    _register()
    try:
        code = app(args=argv, standalone_mode=False)  # returns the code of a typer.Exit
        if isinstance(code, int) and code:
            sys.exit(code)
    except MetaforgeError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted; a training run continues with `metaforge train --resume RUN_DIR`", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
