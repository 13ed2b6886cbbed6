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
    except OSError as e:  # a write that no library path turned into an OutputError (the disk filled, a folder went read-only)
        where = f" {e.filename}" if e.filename else ""
        typer.echo(f"error: cannot write{where}: {e.strerror or e}; free space or choose another output", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; a training run continues with `metaforge train --resume RUN_DIR`", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except _CLICK_ERROR as e:  # usage errors: an unknown option, a value of the wrong type
        if type(e).__name__ == "NoArgsIsHelpError":  # `metaforge` alone: the help is the answer
            e.show()
            sys.exit(0)
        typer.echo(f"error: {usage_line(e)}", err=True)
        sys.exit(e.exit_code)


# typer >= 0.22 vendors click (typer._click), older typer uses click itself: take whichever it raises.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def usage_line(e: Exception) -> str:
    """Click's message on one line, with where to read the command's options."""
    text = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    return f"{text} (see `{ctx.command_path} --help`)" if ctx is not None else text
