"""A rich progress display for long library work (implements :class:`metaforge.report.Reporter`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from metaforge.report import Reporter


class RichReporter(Reporter):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self.task = None
        self.started = False

    def __enter__(self) -> "RichReporter":
        return self  # the display starts with the first phase: work that fails early prints nothing

    def __exit__(self, *exc) -> None:
        if self.started:
            self.progress.stop()

    def phase(self, name: str, total: int, done: int = 0) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if self.task is not None:
            self.progress.update(self.task, visible=True)
        self.task = self.progress.add_task(name, total=total, completed=done, metrics="")

    def advance(self, steps: int = 1, **metrics: float) -> None:
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self.progress.update(self.task, advance=steps, **({"metrics": text} if metrics else {}))

    def log(self, message: str) -> None:
        self.progress.console.print(message)
