"""Where long-running library work sends its progress, so the library never prints: the caller passes one.

Named for what it carries (phases, steps, log lines); not to be confused with the export report
(:class:`metaforge.export.report.ExportReport`, a file beside each artifact) or the fit document
(:class:`metaforge.fit.document.FitDocument`, what ``fit --json`` writes).
"""

from __future__ import annotations


class Progress:
    """Silent by default; the CLI subclasses it with a rich progress display."""

    def phase(self, name: str, total: int, done: int = 0) -> None:
        """A phase of ``total`` steps starts (``done`` already completed when resuming)."""

    def advance(self, steps: int = 1, **metrics: float) -> None:
        """``steps`` more steps finished; ``metrics`` are the latest values to show."""

    def log(self, message: str) -> None:
        """A line worth keeping (a finished epoch, a measurement)."""
