"""The console tables are printed on: the terminal's width on a TTY, and no width limit in a pipe or log.

Rich falls back to 80 columns when its output is not a terminal, which cut ``fit``'s front table in
CI logs ("(roofl…"); there a table is drawn at its natural width instead. ``COLUMNS`` still wins.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 1000  # wide enough for any table; rich draws a table no wider than it needs


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH)
