"""Atomic file writes: a reader never sees a half-written output file.

Everything is written to a temporary file in the destination directory and
moved into place with ``os.replace`` (atomic on POSIX) only once complete. A
command's output folder is written the same way: into a hidden staging folder
next to it, moved into place only once the command succeeded
(:func:`staged_folder`); outputs that would overwrite the command's inputs are
refused (:func:`check_outputs`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from miragelab.errors import InputError

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


# --------------------------------------------------------------------------- output folders


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file or folder (any spelling, a hard link, a symlink)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _clobber(dest: Path, inputs: Sequence[Path]) -> str | None:
    """Why writing ``dest`` would overwrite an input (the same file or folder, or, for an
    existing file, one inside an input folder: the command read it), or None."""
    if not dest.exists():
        return None
    for src in inputs:
        if _same_file(dest, src):
            return "is also an input; refusing to overwrite it"
        if dest.is_file() and src.is_dir() and dest.resolve().is_relative_to(src.resolve()):
            return f"is a file of the input folder {src}; refusing to overwrite it"
    return None


def check_outputs(
    inputs: Iterable[str | os.PathLike[str] | None],
    outputs: Mapping[str, str | os.PathLike[str] | None],
) -> None:
    """Refuse outputs that would overwrite an input, or that name one file twice.

    ``outputs`` maps each output's option (``"out"``, ``"scores-out"``) to its path
    (``None``: not given). An output that is an input (the same file under another
    spelling or a hard link included), or an existing file inside an input folder,
    is an :class:`~miragelab.errors.InputError` naming the output and its option.
    """
    sources = [Path(p) for p in inputs if p is not None]
    given = [(field, Path(p)) for field, p in outputs.items() if p is not None]
    for i, (field, dest) in enumerate(given):
        for other_field, other in given[:i]:
            if _same_file(dest, other) or dest.resolve() == other.resolve():
                raise InputError(
                    f"is also --{other_field}: give each output its own file",
                    path=dest,
                    field=field,
                )
        why = _clobber(dest, sources)
        if why is not None:
            raise InputError(why, path=dest, field=field)


def _new_parents(folder: Path) -> list[Path]:
    """The missing ancestors of ``folder``, outermost first."""
    missing = []
    for parent in folder.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing[::-1]


def _plan_moves(staged: Path, target: Path, inputs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """The renames that put ``staged``'s entries into the existing folder ``target``:
    same-named files are replaced, other files kept, subfolders merged. Refuses (before
    anything moves) a symlink where a folder is written, a file where a folder is
    written and the reverse, and a file that is an input."""
    moves = []
    for entry in sorted(staged.iterdir()):
        dest = target / entry.name
        why = _clobber(dest, inputs)
        if why is not None:
            raise InputError(why, path=dest, field="out")
        if entry.is_dir():
            if dest.is_symlink():
                raise InputError(
                    "is a symbolic link: writing into it would write outside --out; "
                    "remove the link or choose another --out",
                    path=dest,
                    field="out",
                )
            if dest.is_dir():
                moves += _plan_moves(entry, dest, inputs)
                continue
            if dest.exists():
                raise InputError("is a file where a folder is written", path=dest, field="out")
        elif dest.is_dir() and not dest.is_symlink():
            raise InputError("is a folder where a file is written", path=dest, field="out")
        moves.append((entry, dest))
    return moves


@contextlib.contextmanager
def staged_folder(
    out_dir: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None] = ()
) -> Iterator[Path]:
    """Yield a hidden staging folder; on success move its entries into ``out_dir``, so
    ``out_dir`` gets the whole output or nothing.

    A missing ``out_dir`` is staged next to it and appears with one rename. An
    existing one is staged inside it (``out_dir/.staging-*``: the same file system,
    and no need to write in its parent), and the staged files move in one by one,
    replacing same-named files and keeping the others; every move is planned and
    checked before the first. On any failure before the moves (an exception,
    Ctrl-C) the staging folder, and the parents made for it, are removed and
    ``out_dir`` is as it was. Should a move itself fail, the files not yet moved
    are kept in the staging folder, and the error says where. ``inputs`` are the
    command's input files and folders: an ``out_dir`` that is one, or a staged
    file that would overwrite one, is refused (:func:`check_outputs`), as are
    ``out_dir`` being a file and a symlink inside it where a folder is written.
    """
    target = Path(out_dir)
    sources = [Path(p) for p in inputs if p is not None]
    if target.exists() and not target.is_dir():
        raise InputError("is a file; --out must be a folder", path=target, field="out")
    check_outputs(sources, {"out": target})
    for source in sources:
        if source.is_dir() and target.resolve().is_relative_to(source.resolve()):
            raise InputError(
                f"is inside the input folder {str(source)!r}, whose files are all read: the "
                "output would be read as input the next time; write it elsewhere",
                path=target,
                field="out",
            )
    made = _new_parents(target)
    inside = target.is_dir()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        home, prefix = (
            (target, ".staging-") if inside else (target.parent, f".{target.name}.staging-")
        )
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=home))
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write here ({exc.strerror})", str(target)) from None
    try:
        as_created(stage, folder=True)
        yield stage
        if not inside and not target.exists():
            try:
                os.rename(stage, target)
                return
            except OSError:  # made meanwhile: merge into it
                pass
        moves = _plan_moves(stage, target, sources)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for parent in reversed(made):
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    for done, (src, dest) in enumerate(moves):
        try:
            os.replace(src, dest)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot move the output into place ({exc.strerror}); {done} of "
                f"{len(moves)} files moved, the rest are in {stage}",
                str(dest),
            ) from None
    shutil.rmtree(stage)


def in_folder(path: str | os.PathLike[str], stage: Path, out_dir: str | os.PathLike[str]) -> Path:
    """Where a file written under the staging folder ``stage`` lies once in ``out_dir``."""
    return Path(out_dir) / Path(path).relative_to(stage)
