"""Text inputs read with their positions: JSON documents, JSON Lines, CSV.

Every reader of the project reads through here, so a fault is named the same
way everywhere: the file, the line, and one wording for one fault (``not UTF-8
text (byte N)``, ``malformed JSON (reason)``, ``malformed CSV (reason)``).

JSON documents (lm-eval ``results_*.json``, BIG-bench ``scores_*.json``, HELM
run files, a ladder's ``ladder.json``) are parsed whole; an error that says
``scores[3].score_dict.bleu`` also says on which line that value is: parsing
keeps no positions, so the error path scans the text once more with a small
scanner that follows one key path and skips every other value (strings through
the C string scanner). Only errors pay for it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.decoder import scanstring
from pathlib import Path
from typing import Any

import orjson

from miragelab.errors import InputError

__all__ = [
    "MAX_LINE_BYTES",
    "JsonDocument",
    "check_unique_keys",
    "decode_error",
    "dotted",
    "iter_csv_rows",
    "iter_json_records",
    "iter_jsonl",
    "json_error",
    "line_of",
    "malformed_json",
    "not_utf8",
    "parse_json_line",
    "read_json_document",
    "regular_file",
    "read_json_text",
    "table_format",
]


def not_utf8(raw: bytes, err: UnicodeDecodeError, path: str | os.PathLike[str]) -> InputError:
    """The error of a byte that is not UTF-8, at its line of ``raw``."""
    line = raw.count(b"\n", 0, err.start) + 1
    return InputError(f"not UTF-8 text (byte {err.start})", path=path, line=line)


def malformed_json(
    reason: str | None, path: str | os.PathLike[str], line: int | None
) -> InputError:
    """The error of text that is not JSON."""
    text = "malformed JSON" if not reason else f"malformed JSON ({reason})"
    return InputError(text, path=path, line=line)


Key = str | int

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:Infinity|NaN|[0-9][0-9.eE+-]*)|true|false|null|Infinity|NaN")
_STRUCTURE = re.compile(r'["\[\]{}]')


# --------------------------------------------------------------------------- repeated keys

#: a key's closing quote and its colon (JSON allows whitespace between them)
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of Python's json: an object, or the first key it repeats."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return out


_COLON = re.compile(r"[ \t\r\n]*:")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def _line_of_repeat(text: str, key: str) -> int | None:
    """The line of the first ``"key":`` that repeats a key of its own object."""
    stack: list[set[str] | None] = []  # the keys of each open object (None: an array)
    for match in _JSON_TOKEN.finditer(text):
        token = match.group(0)
        if token in "{[":
            stack.append(set() if token == "{" else None)
        elif token in "}]":
            if stack:
                stack.pop()
        elif stack and stack[-1] is not None:
            if not _COLON.match(text, match.end()):
                continue
            name = json.loads(token)
            if name in stack[-1] and name == key:
                return text.count("\n", 0, match.start()) + 1
            stack[-1].add(name)
    return None


def check_unique_keys(
    raw: bytes, data: Any, path: str | os.PathLike[str], line: int | None
) -> None:
    """Refuse a JSON text in which one object has the same key twice: JSON parsers keep
    the last value without a word, so a record could silently say two things.

    The fast test compares the keys of the text (a quote, spaces, a colon) with those
    of the parsed value written back by orjson (a quote and a colon): a string holds
    the same quotes in both, so the text has more only when a key repeats (or a
    string holds a quote, spaces and a colon); an escaped quote ``\\u0022`` is the
    one way the text can have fewer. Only then does Python's json read the text
    once more to name the key.
    """
    try:
        written = orjson.dumps(data)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: read it slowly
        written = b""
    if written and b"\\u0022" not in raw and len(_KEY_END.findall(raw)) == written.count(b'":'):
        return
    try:
        text = raw.decode("utf-8")
        json.loads(text, object_pairs_hook=_unique_pairs)
    except _RepeatedKey as exc:
        where = line if line is not None else _line_of_repeat(text, exc.key)
        raise repeated_key(exc.key, path, where) from None
    except (ValueError, RecursionError):
        return  # orjson read it; the text is JSON


def repeated_key(key: str, path: str | os.PathLike[str], line: int | None) -> InputError:
    """The error of an object that gives one key twice."""
    return InputError(
        f"malformed JSON (key {key!r} appears twice in one object)",
        path=path,
        line=line,
        field=key,
    )


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
    except (OSError, EOFError, UnicodeDecodeError, ValueError, zlib.error):
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
        return not_utf8(raw, err, p)
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        return malformed_json(err.msg, p, err.lineno)
    except RecursionError:
        return malformed_json("nested too deeply", p, None)
    return malformed_json(None, p, None)


def read_json_document(path: str | os.PathLike[str]) -> object:
    """Parse a JSON file (plain or gzip); errors name the file and the line.

    Python's ``json`` is the fallback for NaN/Infinity, which some tools write.
    """
    p = regular_file(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip data ({exc})", path=p) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = _python_json(raw, p)
        check_unicode(data, raw, p, None)
        return data
    check_unique_keys(raw, data, p, None)
    return data


def _python_json(raw: bytes, path: Path) -> Any:
    """A document orjson refuses, read by Python's json (NaN/Infinity), repeated keys
    refused; anything else it cannot read is a :func:`decode_error`."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _RepeatedKey as exc:
        raise repeated_key(exc.key, path, _line_of_repeat(text, exc.key)) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise decode_error(raw, path) from None


@dataclass
class JsonDocument:
    """A parsed JSON file that can say on which line a value sits."""

    path: Path
    text: str
    data: Any

    def error(self, keys: Sequence[Key], message: str, field: str | None = None) -> InputError:
        """An InputError about the value at ``keys``, with its line."""
        line = line_of(self.text, keys)
        return InputError(message, path=self.path, line=line, field=field or dotted(keys) or None)


def read_json_text(path: str | os.PathLike[str]) -> JsonDocument:
    """Parse a JSON file and keep its text, so later checks can name lines."""
    p = regular_file(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise not_utf8(raw, err, p) from None
    if not text.strip():
        raise InputError("empty file", path=p)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = _python_json(raw, p)  # NaN/Infinity; the checks name the field
        check_unicode(data, raw, p, None)
    else:
        check_unique_keys(raw, data, p, None)
    return JsonDocument(p, text, data)


# --------------------------------------------------------------------------- JSON Lines


def parse_json_line(raw: bytes, path: str | os.PathLike[str], line: int) -> Any:
    """One JSON Lines record. Python's json is the fallback for NaN/Infinity (which some
    tools write), so the checks that follow name the field; anything else is malformed."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        check_unique_keys(raw, record, path, line)
        return record
    try:
        record = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except _RepeatedKey as exc:
        raise repeated_key(exc.key, path, line) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text (byte {err.start})", path=path, line=line) from None
    except json.JSONDecodeError as exc:
        raise malformed_json(exc.msg, path, line) from None
    except RecursionError:
        raise malformed_json("nested too deeply", path, line) from None
    check_unicode(record, raw, path, line)
    return record


def check_unicode(
    record: Any, raw: bytes | str, path: str | os.PathLike[str], line: int | None
) -> None:
    """Refuse a record whose strings hold a lone surrogate (``"\\ud800"``): Python's json
    accepts the escape, but the text is not Unicode and cannot be written back."""
    escape = b"\\ud" if isinstance(raw, bytes) else "\\ud"
    if escape not in raw.lower():
        return
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(
            f"a string holds a lone surrogate ({err.object[err.start : err.end]!r}): "
            "not Unicode text",
            path=path,
            line=line,
        ) from None


def table_format(path: Path) -> str:
    """``jsonl``, ``csv`` or ``parquet``, from the file name (optionally ``.gz``)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    raise InputError(
        "unknown file format (expected .jsonl, .json, .csv or .parquet, optionally .gz)", path=path
    )


_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_distinct(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an input named twice (as itself, a link or another spelling): its rows
    would be read twice and reported as duplicates of themselves."""
    seen: dict[Path, str] = {}
    for raw in paths:
        try:
            key = Path(raw).resolve()
        except OSError:
            continue  # the reader says what is wrong with it
        if key in seen:
            raise InputError(f"given twice (also as {seen[key]!r})", path=raw)
        seen[key] = str(raw)


def regular_file(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """``path``, checked to be a regular file (or, with ``folder``, a folder).

    A named pipe, a device or a socket would block a reader for ever or never
    end; each is refused by name before anything opens it. A missing path is
    "no such file".
    """
    p = Path(path)
    wanted = "file or folder" if folder else "file"
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"no such {wanted}", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if stat.S_ISREG(mode) or (folder and stat.S_ISDIR(mode)):
        return p
    if stat.S_ISDIR(mode):
        raise InputError("is a folder; expected a file", path=p)
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InputError(f"{kind}, not a regular {wanted}: give a {wanted}", path=p)


def open_binary(path: Path) -> io.BufferedIOBase:
    regular_file(path)
    if path.name.lower().endswith(".gz"):
        # GzipFile.readline is Python per call; a C buffer over it reads a line as fast as
        # a plain file does (a gzip of 64M empty lines otherwise takes minutes)
        return io.BufferedReader(gzip.GzipFile(path, "rb"), buffer_size=1 << 20)  # type: ignore[arg-type]
    return open(path, "rb")


#: a JSONL line longer than this is refused (one record is far smaller), so a file
#: without newlines cannot make the reader hold gigabytes for one "line"
MAX_LINE_BYTES = 64 * 2**20


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line of a JSONL file."""
    p = Path(path)
    try:
        handle = open_binary(p)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=p) from None
    with handle:
        for number, raw in _nonblank_lines(handle, p):
            yield number, parse_json_line(raw, p, number)


#: the first character of a line that is not white space, to the line's end
_NONBLANK = re.compile(rb"[^\s][^\n]*")
_BLOCK = 1 << 20


def _nonblank_lines(handle: io.BufferedIOBase, path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of each line that is not blank, read a block at a time:
    blank lines (millions of them, from a small gzip) are counted in C, not looped over."""
    number = 0  # lines before ``pending``
    pending = b""
    try:
        while True:
            chunk = handle.read(_BLOCK)
            data = pending + chunk
            end = data.rfind(b"\n") + 1 if chunk else len(data)
            if end == 0 and len(data) > MAX_LINE_BYTES:
                raise InputError(
                    f"line longer than {MAX_LINE_BYTES:,} bytes (JSON Lines holds one "
                    "record per line)",
                    path=path,
                    line=number + 1,
                )
            block, pending = data[:end], data[end:]
            at = 0
            for match in _NONBLANK.finditer(block):
                start = block.rfind(b"\n", at, match.start()) + 1 or at  # the line's start
                number += block.count(b"\n", at, start)
                at = start
                if match.end() - start > MAX_LINE_BYTES:
                    raise InputError(
                        f"line longer than {MAX_LINE_BYTES:,} bytes (JSON Lines holds one "
                        "record per line)",
                        path=path,
                        line=number + 1,
                    )
                yield number + 1, block[start : match.end()]
            number += block.count(b"\n", at)
            if not chunk:
                return
    except (OSError, EOFError, zlib.error) as exc:
        # a block is lost whole: read again a line at a time to name the line it breaks on
        raise InputError(f"cannot read: {exc}", path=path, line=_broken_line(path)) from None


def _broken_line(path: Path) -> int | None:
    """The line on which reading ``path`` fails (a truncated or corrupt gzip body)."""
    number = 0
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:  # small reads: it fails where the text breaks
            for number, _ in enumerate(handle, start=1):  # noqa: B007 - the count is the point
                pass
    except (OSError, EOFError, zlib.error):
        return number + 1
    return None


# --------------------------------------------------------------------------- JSON records


def iter_json_records(path: Path) -> Iterator[tuple[int, Any, int]]:
    """``(line, record, bytes so far)`` for each record of a samples file.

    JSONL is streamed line by line; a JSON array (lm-eval <= 0.4.2) is read
    whole and its records numbered by the line each starts on.
    """
    try:
        handle = open_binary(path)  # plain or gzip
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=path) from None
    any_record = False
    try:
        with handle:
            first = b""
            for chunk in iter(lambda: handle.read(1), b""):
                if not chunk.isspace():
                    first = chunk
                    break
            handle.seek(0)
            if first == b"[":
                yield from _iter_array(path, handle.read())
                return
            done = 0
            for number, raw in enumerate(handle, start=1):
                done += len(raw)
                if raw.isspace():
                    continue
                any_record = True
                yield number, parse_json_line(raw, path, number), done
    except (OSError, EOFError, zlib.error) as exc:  # a gzip body that does not inflate
        raise InputError(f"cannot read: {exc}", path=path, line=_broken_line(path)) from None
    if not any_record:
        raise InputError("empty file: no samples", path=path)


def _iter_array(path: Path, raw: bytes) -> Iterator[tuple[int, Any, int]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise not_utf8(raw, err, path) from None
    decoder = json.JSONDecoder(object_pairs_hook=_unique_pairs)
    pos = text.index("[") + 1
    line = text.count("\n", 0, pos) + 1
    n = 0
    while True:
        start = _skip_space(text, pos)
        line += text.count("\n", pos, start)
        if start >= len(text):
            raise malformed_json("the array is not closed", path, line)
        if text[start] == "]":
            break
        try:
            record, end = decoder.raw_decode(text, start)
        except _RepeatedKey as exc:
            try:  # the record's end, to name the repeat's line
                _, end = json.JSONDecoder().raw_decode(text, start)
            except (ValueError, RecursionError):
                end = len(text)  # malformed further on: the repeat comes first
            within = _line_of_repeat(text[start:end], exc.key) or 1
            raise repeated_key(exc.key, path, line + within - 1) from None
        except ValueError as exc:
            where = line + text.count("\n", start, getattr(exc, "pos", start))
            raise malformed_json(exc.args[0].split(":")[0], path, where) from None
        except RecursionError:
            raise malformed_json("nested too deeply", path, line) from None
        check_unicode(record, text[start:end], path, line)
        n += 1
        yield line, record, end
        line += text.count("\n", start, end)
        pos = _skip_space(text, end)
        line += text.count("\n", end, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            break
        else:
            raise malformed_json("expected ',' or ']'", path, line)
    if n == 0:
        raise InputError("empty file: no samples", path=path)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


# --------------------------------------------------------------------------- CSV


def _bad_utf8_line(path: Path) -> tuple[int | None, int | None]:
    """Line and byte offset of the first byte that is not UTF-8 (error path only)."""
    try:
        with open_binary(path) as handle:
            raw = handle.read()
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return raw.count(b"\n", 0, err.start) + 1, err.start
    except (OSError, EOFError, zlib.error):
        pass
    return None, None


def iter_csv_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, cells)`` for the header, then for every record of a CSV file.

    ``line`` is the physical line a record starts on (a quoted cell may span
    lines); blank lines are skipped. Every problem raises :class:`InputError`
    naming the line: a byte that is not UTF-8, broken quoting, a record with
    more or fewer cells than the header, a column named twice in the header.
    """
    p = regular_file(path)
    try:
        handle = (
            gzip.open(p, "rt", encoding="utf-8-sig", newline="")
            if p.name.lower().endswith(".gz")
            else open(p, encoding="utf-8-sig", newline="")
        )
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=p) from None
    with handle:
        reader = csv.reader(handle, strict=True)
        header: list[str] | None = None
        end = 0
        try:
            for cells in reader:
                start, end = end + 1, reader.line_num
                if not cells:
                    continue
                if header is None:
                    header = cells
                    seen: set[str] = set()
                    for name in header:
                        if name in seen:
                            raise InputError(
                                f"column {name!r} appears twice in the header",
                                path=p,
                                line=start,
                                field=name,
                            )
                        seen.add(name)
                elif len(cells) != len(header):
                    raise InputError(
                        f"{len(cells)} cells, but the header has {len(header)} columns",
                        path=p,
                        line=start,
                    )
                yield start, cells
        except csv.Error as exc:
            raise InputError(f"malformed CSV ({exc})", path=p, line=end + 1) from None
        except UnicodeDecodeError:
            line, byte = _bad_utf8_line(p)
            if byte is None:  # the text decoded from a gzip whose body is not whole
                raise InputError("corrupt gzip data", path=p, line=end + 1) from None
            raise InputError(f"not UTF-8 text (byte {byte})", path=p, line=line) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read: {exc}", path=p, line=end + 1) from None
    if header is None:
        raise InputError("empty file: no header and no records", path=p)
