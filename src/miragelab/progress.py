"""Progress bars over units of work and training, shared by every command that runs models.

:func:`unit_progress` counts finished units; :class:`RichReporter` draws one
bar per model of a training ladder (``mirage ladder train``, ``mirage reproduce``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

_err = Console(stderr=True)


@contextlib.contextmanager
def unit_progress(total: int, label: str, done: int = 0, tokens: bool = False) -> Iterator[UnitBar]:
    """A rich bar over units on a terminal; yields the :class:`UnitBar` that advances it.

    With ``tokens``, the bar also shows the tokens per second that
    :meth:`UnitBar.add_tokens` counts. On a pipe nothing is drawn, so an error stays
    the single line on stderr.
    """
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("units"),
        TimeElapsedColumn(),
    ]
    if tokens:
        columns.append(TextColumn("{task.fields[rate]}"))
    with Progress(*columns, console=_err, disable=not _err.is_terminal) as progress:
        task = progress.add_task(label, total=total, completed=done, rate="")
        yield UnitBar(progress, task)


class UnitBar:
    """Advances a :func:`unit_progress` bar by one unit (called), and counts tokens."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task
        self.start = time.perf_counter()
        self.tokens = 0

    def __call__(self, *_: object) -> None:
        self.progress.advance(self.task)

    def add_tokens(self, n: int) -> None:
        """``n`` more tokens done: the bar shows the rate since it started."""
        self.tokens += n
        self.progress.update(self.task, rate=f"{self.rate:,.0f} tokens/s")

    @property
    def rate(self) -> float:
        """Tokens per second since the bar started."""
        return self.tokens / max(time.perf_counter() - self.start, 1e-9)


class RichReporter:
    """Training progress as one rich bar per model (the reporter of ``train_ladder``).

    Parameters
    ----------
    progress
        The live :class:`rich.progress.Progress` the bars are added to; its
        columns may show the ``loss`` and ``tps`` (tokens per second) fields.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.ids: dict[str, TaskID] = {}

    def start(self, name: str, total: int, done: int) -> None:
        """A bar for model ``name``: ``total`` steps, ``done`` of them already."""
        self.ids[name] = self.progress.add_task(
            name, total=total, completed=done, loss=0.0, tps=0.0
        )

    def advance(self, name: str, step: int, loss: float, tokens_per_s: float) -> None:
        """Model ``name`` reached ``step`` with this training loss and speed."""
        self.progress.update(self.ids[name], completed=step, loss=loss, tps=tokens_per_s)

    def finish(self, name: str) -> None:
        """Model ``name`` is trained: its bar turns green."""
        self.progress.update(self.ids[name], description=f"[green]{name}")
