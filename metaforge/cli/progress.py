"""A rich progress display for long library work (implements :class:`metaforge.progress.Progress`)."""

from __future__ import annotations

from rich import progress as bar
from rich.console import Console

from metaforge.progress import Progress


class RichProgress(Progress):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = bar.Progress(
            bar.TextColumn("[bold]{task.description}"),
            bar.BarColumn(),
            bar.MofNCompleteColumn(),
            bar.TimeElapsedColumn(),
            bar.TimeRemainingColumn(),
            bar.TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self.task = None
        self.started = False

    def __enter__(self) -> "RichProgress":
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
