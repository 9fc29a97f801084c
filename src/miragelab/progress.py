"""Progress bars over units of work, shared by every command that runs models."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
