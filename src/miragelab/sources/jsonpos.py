"""Where a value sits in a JSON document: its line, for error messages.

Results files (lm-eval ``results_*.json``, BIG-bench ``scores_*.json``, a
ladder's ``ladder.json``) are single JSON documents of hundreds of lines; an
error that says ``scores[3].score_dict.bleu`` should also say on which line
that value is. Parsing keeps no positions, so the error path scans the text
once more with a small scanner that follows one key path and skips every
other value (strings through the C string scanner). Only errors pay for it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Sequence
from json.decoder import scanstring
from pathlib import Path

from miragelab.errors import InputError

__all__ = ["decode_error", "dotted", "json_error", "line_of", "read_json_document"]

Key = str | int

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:Infinity|NaN|[0-9][0-9.eE+-]*)|true|false|null|Infinity|NaN")
_STRUCTURE = re.compile(r'["\[\]{}]')


def dotted(keys: Sequence[Key]) -> str:
    """``("scores", 3, "score_dict")`` -> ``"scores[3].score_dict"``."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _skip(text: str, i: int) -> int:
    """End of the value starting at ``text[i]``."""
    char = text[i]
    if char == '"':
        return scanstring(text, i + 1)[1]
    if char in "[{":
        depth = 0
        while True:
            match = _STRUCTURE.search(text, i)
            if match is None:
                raise ValueError("unbalanced")
            i = match.end()
            found = match.group()
            if found == '"':
                i = scanstring(text, i)[1]
            elif found in "[{":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return i
    match = _SCALAR.match(text, i)
    if match is None:
        raise ValueError("not a value")
    return match.end()


def _find(text: str, i: int, keys: Sequence[Key]) -> int | None:
    """Offset of the value at ``keys`` below the value starting at ``i`` (after spaces)."""
    i = _WS.match(text, i).end()
    if not keys:
        return i
    key, rest = keys[0], keys[1:]
    char = text[i] if i < len(text) else ""
    if char == "{" and isinstance(key, str):
        i = _WS.match(text, i + 1).end()
        found = None
        while i < len(text) and text[i] != "}":
            name, i = scanstring(text, i + 1)
            i = _WS.match(text, i).end() + 1  # the colon
            start = _WS.match(text, i).end()
            if name == key:
                found = start  # the last of repeated keys wins, as in parsers
            i = _WS.match(text, _skip(text, start)).end()
            if i < len(text) and text[i] == ",":
                i = _WS.match(text, i + 1).end()
        return None if found is None else _find(text, found, rest)
    if char == "[" and isinstance(key, int):
        i = _WS.match(text, i + 1).end()
        index = 0
        while i < len(text) and text[i] != "]":
            if index == key:
                return _find(text, i, rest)
            i = _WS.match(text, _skip(text, i)).end()
            if i < len(text) and text[i] == ",":
                i = _WS.match(text, i + 1).end()
            index += 1
    return None


def line_of(text: str, keys: Sequence[Key]) -> int | None:
    """1-based line on which the value at ``keys`` starts, or None when it is absent.

    For a key path into a document that parses; ``keys`` mixes object keys
    (str) and array indices (int). A path that runs out (a missing key) gives
    the line of the deepest value found, so "missing" errors point at the
    object that lacks the key.
    """
    try:
        for depth in range(len(keys), -1, -1):
            offset = _find(text, 0, keys[:depth])
            if offset is not None:
                return text.count("\n", 0, offset) + 1
    except (ValueError, IndexError):  # not a document this scanner understands
        return None
    return None


def _text_of(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, ValueError):
        return None


def json_error(
    message: str,
    path: str | os.PathLike[str],
    keys: Sequence[Key],
    field: str | None = None,
) -> InputError:
    """An InputError about the value at ``keys`` of the JSON file ``path``, with its line.

    ``field`` defaults to the dotted key path (``scores[3].score_dict.bleu``).
    """
    p = Path(path)
    text = _text_of(p)
    line = None if text is None else line_of(text, keys)
    return InputError(message, path=p, line=line, field=field or dotted(keys) or None)


def decode_error(raw: bytes, path: str | os.PathLike[str]) -> InputError:
    """The InputError of a document that does not parse: not UTF-8, or malformed JSON.

    Python's ``json`` names the line of the first syntax error (and accepts NaN,
    so its complaint is about the real problem).
    """
    p = Path(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return InputError(f"not UTF-8 text (byte {err.start})", path=p, line=line)
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        return InputError(f"malformed JSON ({err.msg})", path=p, line=err.lineno)
    except RecursionError:
        return InputError("malformed JSON (nested too deeply)", path=p)
    return InputError("malformed JSON", path=p)


def read_json_document(path: str | os.PathLike[str]) -> object:
    """Parse a JSON file (plain or gzip); errors name the file and the line.

    Python's ``json`` is the fallback for NaN/Infinity, which some tools write.
    """
    import orjson

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip data ({exc})", path=p) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise decode_error(raw, p) from None
