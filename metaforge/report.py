"""How long-running library work reports progress without printing: the caller passes a reporter."""

from __future__ import annotations


class Reporter:
    """Silent by default; the CLI subclasses it with a rich progress display."""

    def phase(self, name: str, total: int, done: int = 0) -> None:
        """A phase of ``total`` steps starts (``done`` already completed when resuming)."""

    def advance(self, steps: int = 1, **metrics: float) -> None:
        """``steps`` more steps finished; ``metrics`` are the latest values to show."""

    def log(self, message: str) -> None:
        """A line worth keeping (a finished epoch, a measurement)."""
