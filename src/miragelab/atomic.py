"""Atomic file writes: a reader never sees a half-written output file.

Everything is written to a temporary file in the destination directory and
moved into place with ``os.replace`` (atomic on POSIX) only once complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

#: write failures that are about the destination, not the data
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def as_created(path: str | os.PathLike[str], folder: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the permissions a file or folder
    created by ``open`` or ``mkdir`` would get: ``0666`` or ``0777`` less the umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # report the file the user asked for, not our temp name
        raise OSError(exc.errno, f"cannot write here ({exc.strerror})", str(target)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        as_created(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if exc.errno in _NO_ROOM or tmp_name in str(exc):
            # disk full, file too large, read-only: name the file the user asked for
            reason = exc.strerror or " ".join(str(exc).replace(tmp_name, "").split())
            raise OSError(exc.errno, f"cannot write ({reason})", str(target)) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
