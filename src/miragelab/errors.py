"""One error type for bad input, so every edge reports file, line and field alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike


class InputError(ValueError):
    """Bad user input: names the file, the line (or row) and the field at fault.

    The CLI prints ``str(error)`` as a single line and exits with code 2.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
        unit: str = "line",
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.unit = unit
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        text = " ".join(self.message.split())  # keep it on one line
        return f"{prefix}: {text}" if prefix else text


@contextmanager
def about(path: str | PathLike[str]) -> Iterator[None]:
    """Name ``path`` in every :class:`InputError` raised inside that names no file: for
    analyses of a table read from ``path``, whose checks see rows, not files."""
    try:
        yield
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(
            exc.message, path=path, line=exc.line, field=exc.field, unit=exc.unit
        ) from None
