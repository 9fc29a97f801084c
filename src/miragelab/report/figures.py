"""Saving figures the same way everywhere: in the house style, PNG for pages, SVG for
papers, atomically.

Also the two rules for text that came from data (a task, family, model or metric
name, a reason): :func:`plain_text` before it goes into a figure, so matplotlib
draws it literally instead of parsing it as mathtext, and :func:`slug` before
it becomes part of a file name, so the name is short, portable and unique.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from miragelab.atomic import atomic_path
from miragelab.report.style import finish

__all__ = ["plain_text", "save_figure", "slug"]

#: The readable part of a :func:`slug` is cut to this many characters.
SLUG_WIDTH = 60


def plain_text(text: object) -> str:
    """``text`` as a matplotlib string that is drawn literally, never as mathtext.

    matplotlib parses a string as mathtext when it has an even, nonzero number of
    unescaped ``$`` (a name such as ``t$\\undefinedmacro$`` then fails to draw);
    otherwise it draws it as is, with each ``\\$`` turned back into ``$``. Escaping
    every ``$`` as ``\\$`` leaves no unescaped one, and the drawn string is exactly
    ``text`` (backslashes included). Use it on whole data-derived strings, not on
    fixed labels meant as math (``$L_{CE}$``). Assumes ``text.usetex`` is off,
    matplotlib's default.
    """
    return str(text).replace("$", r"\$")


def slug(*parts: str) -> str:
    """A file name stem for ``parts`` (one text, or the fields of a key): readable and unique.

    The readable part keeps ASCII letters, digits, ``-`` and ``_`` (accents are
    dropped: ``é`` -> ``e``; every other run of characters becomes one ``-``;
    several parts are joined by ``_``), cut to :data:`SLUG_WIDTH` characters. It
    ends with ``-`` and 8 hex digits of a BLAKE2b hash of the full, unchanged
    parts (as a JSON list, so no two lists of parts hash the same text): names
    that read the same (``a/b`` and ``a.b``) or were cut get different files, and
    the same parts always the same name.
    """
    texts = [str(part) for part in parts]
    folded = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
        for text in texts
    )
    readable = "_".join(re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") for text in folded)
    readable = readable[:SLUG_WIDTH].strip("-_")
    whole = json.dumps(texts, ensure_ascii=False).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(whole, digest_size=4).hexdigest()
    return f"{readable}-{digest}" if readable else digest


def save_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    dpi: int = 200,
    formats: tuple[str, ...] = ("png", "svg"),
) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.svg`` (those of ``formats``); return their paths.

    The figure first gets the house style (:func:`miragelab.report.style.finish`):
    every saved figure has the same fonts, sizes and spines, whatever it was drawn with.
    The SVG gets a fixed hash salt and no date, so the same figure gives the
    same bytes (the reproduction's cache and diffs rely on it).
    """
    stem = Path(stem)
    finish(fig)
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in formats}
    if "png" in paths:
        with atomic_path(paths["png"]) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    if "svg" in paths:
        with matplotlib.rc_context({"svg.hashsalt": f"miragelab-{stem.name}"}):
            with atomic_path(paths["svg"]) as tmp:
                fig.savefig(tmp, format="svg", metadata={"Date": None})
    return paths
