"""Progress bars over units of work and training, shared by every command that runs models.

:func:`unit_progress` counts finished units; :class:`RichReporter` draws one
bar per model of a training ladder (``mirage ladder train``, ``mirage reproduce``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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
def unit_progress(total: int, label: str, done: int = 0) -> Iterator[Callable[..., None]]:
    """A rich bar over units on a terminal; yields the callback that advances it by one.

    On a pipe nothing is drawn, so an error stays the single line on stderr.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("units"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, disable=not _err.is_terminal) as progress:
        task = progress.add_task(label, total=total, completed=done)
        yield lambda *_: progress.advance(task)


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
