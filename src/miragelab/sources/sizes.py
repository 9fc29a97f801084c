"""Model sizes: parse ``"1.4b"``, find a size in a model name, read a sidecar CSV.

Where a size comes from, in the order the loaders try them:

1. an explicit argument or a sidecar CSV (:func:`read_size_sidecar`);
2. the result file itself (``model_num_parameters``, a params column);
3. :data:`KNOWN_FAMILIES`, exact published counts for families whose name
   tokens are rounded (``pythia-70m`` has 70,426,624 parameters, not 7e7);
4. the size token in the name (``llama-2-7b-hf`` -> 7e9), see :func:`size_from_name`.

A size token is a number with a unit ``k``/``m``/``b``/``t`` (thousand,
million, billion, trillion; case-insensitive) standing between separators
(``-``, ``_``, ``/``, ``.``, or the ends of the name): ``Qwen1.5-0.5B`` gives
0.5e9, ``bloom-1b1`` (BLOOM's and RWKV's "1b1" style) gives 1.1e9,
``stablelm-2-1_6b`` gives 1.6e9. Mixture-of-experts names such as
``Mixtral-8x7B`` give ``None``: ``8x7B`` is not the total parameter count, and
no size is better than a wrong one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePath, PurePosixPath

from miragelab.errors import InputError
from miragelab.schema import SCORES, BadValue, ModelSizes, check_number
from miragelab.textio import iter_csv_rows

__all__ = [
    "KNOWN_FAMILIES",
    "KnownFamily",
    "Unnamed",
    "family_from_name",
    "family_in_name",
    "folder_family",
    "known_family",
    "parse_size",
    "read_size_sidecar",
    "short_name",
    "size_from_name",
]

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_size(text: str | int | float) -> float:
    """Parameter count from ``"1.4b"``, ``"70m"``, ``"160M"``, ``"1T"``, ``"350k"`` or a number.

    Also accepts ``"1b1"`` (= 1.1b), thousands separators (``"70,426,624"``)
    and ``"1.4e9"``. Decimal arithmetic keeps ``"1.4b"`` exactly 1,400,000,000.

    Raises :class:`~miragelab.errors.InputError` (a ``ValueError``) when the
    text is not a size.
    """
    if isinstance(text, bool):
        raise InputError(f"not a model size: {text!r}")
    if isinstance(text, int | float):
        value = float(text)
        if not math.isfinite(value):
            raise InputError(f"not a model size: {text!r}")
        return value
    raw = str(text).strip().replace(",", "")
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([kmbgt]?)(\d*)", raw, re.I)
    if match is None or (match.group(4) and (not match.group(3) or "." in match.group(1))):
        raise InputError(f"not a model size: {text!r} (expected e.g. 70m, 1.4b, 6.9B, 1T)")
    digits, exponent, unit, fraction = match.groups()
    try:
        number = Decimal(f"{digits}.{fraction}" if fraction else digits)
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise InputError(f"not a model size: {text!r}") from None
    if exponent:
        number = number.scaleb(int(exponent))
    value = float(number * _UNITS[unit.lower()])
    if not math.isfinite(value):
        raise InputError(f"not a model size: {text!r} is too large")
    return value


def parse_params(text: str | int | float) -> float:
    """A parameter count given by hand (``--params``): a size (:func:`parse_size`) that
    is a whole number >= 1. Raises :class:`~miragelab.errors.InputError`."""
    value = parse_size(text)
    if not (value >= 1 and value.is_integer()):
        raise InputError(f"a parameter count is a whole number >= 1, got {text!r}")
    return value


# --------------------------------------------------------------------------- known families


@dataclass(frozen=True)
class KnownFamily:
    """Exact parameter counts of a family whose names carry rounded sizes.

    ``pattern`` matches the lower-cased model name without its organisation
    prefix; its group ``size`` (absent or empty for the base model) selects the
    entry of ``params``.
    """

    name: str
    pattern: re.Pattern[str]
    params: dict[str, int]
    source: str
    tokens_per_step: int | None = None
    base: str = ""  # key of ``params`` when the name has no size group
    notes: str = field(default="")

    def lookup(self, name: str) -> int | None:
        match = self.pattern.fullmatch(short_name(name).lower())
        if match is None:
            return None
        size = match.groupdict().get("size") or self.base
        return self.params.get(size)


#: Exact sizes of families whose model names round them. Each entry names its source.
KNOWN_FAMILIES: dict[str, KnownFamily] = {
    "pythia": KnownFamily(
        name="pythia",
        # pythia-1.4b, pythia-1.4b-deduped, pythia-v1.1-1.4b-deduped (the pythia-evals files)
        pattern=re.compile(r"pythia(?:-v\d+(?:\.\d+)*)?-(?P<size>\d+(?:\.\d+)?[mb])(?:[-_].*)?"),
        params={
            "70m": 70_426_624,
            "160m": 162_322_944,
            "410m": 405_334_016,
            "1b": 1_011_781_632,
            "1.4b": 1_414_647_808,
            "2.8b": 2_775_208_960,
            "6.9b": 6_857_302_016,
            "12b": 11_846_072_320,
        },
        # 2M tokens a step: step k has seen k * 2,097,152 tokens (300B at step 143000)
        tokens_per_step=2_097_152,
        source=(
            "total parameters from the Pythia model cards, as listed in "
            "miragelab/data/README.md (EleutherAI/pythia); standard and deduplicated "
            "models of one size have the same count"
        ),
    ),
    "gpt2": KnownFamily(
        name="gpt2",
        pattern=re.compile(r"gpt2(?:-(?P<size>medium|large|xl))?"),
        params={
            "small": 124_439_808,
            "medium": 354_823_168,
            "large": 774_030_080,
            "xl": 1_557_611_200,
        },
        base="small",
        source=(
            "Hugging Face openai-community/gpt2* checkpoints, "
            "GPT2LMHeadModel.num_parameters() (output embedding tied to the input)"
        ),
    ),
}


def short_name(name: str) -> str:
    """The name without its organisation: ``EleutherAI/pythia-70m`` -> ``pythia-70m``."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def known_family(name: str) -> tuple[KnownFamily, int] | None:
    """The known family a model name belongs to and its exact size, or ``None``."""
    for family in KNOWN_FAMILIES.values():
        params = family.lookup(name)
        if params is not None:
            return family, params
    return None


_SEP = r"[-_/.]"
# a size token: digits, optional decimals ("0.5b"), or "1_6b" / "1b5" forms, between separators
_SIZE_TOKEN = re.compile(
    rf"(?:(?<=^)|(?<={_SEP}))"
    r"(?P<int>\d+)(?:(?P<dec>\.\d+)|_(?P<usc>\d+))?(?P<unit>[kmbt])(?P<tail>\d+)?"
    rf"(?=$|{_SEP})",
    re.I,
)


def _size_tokens(name: str) -> list[re.Match[str]]:
    return list(_SIZE_TOKEN.finditer(short_name(name)))


def _token_value(match: re.Match[str]) -> float:
    digits = match.group("int")
    if match.group("dec"):
        digits += match.group("dec")
    elif match.group("usc"):
        digits += "." + match.group("usc")
    elif match.group("tail"):
        digits += "." + match.group("tail")
    return float(Decimal(digits) * _UNITS[match.group("unit").lower()])


def size_from_name(name: str) -> float | None:
    """Parameter count from a model name, or ``None`` when the name carries none.

    Known families (:data:`KNOWN_FAMILIES`) give their exact counts
    (``EleutherAI/pythia-1.4b-deduped`` -> 1,414,647,808; ``gpt2-xl`` ->
    1,557,611,200). Otherwise the first size token with unit m, b or t wins
    (``Qwen2-57B-A14B`` -> 57e9); a ``k`` token is used only when there is no
    other (``k`` is more often a context length or step count).
    """
    known = known_family(name)
    if known is not None:
        return float(known[1])
    tokens = _size_tokens(name)
    big = [t for t in tokens if t.group("unit").lower() != "k"]
    chosen = big or tokens
    if not chosen:
        return None
    return _token_value(chosen[0])


def family_in_name(name: str) -> str | None:
    """The family a model name gives: the name without organisation and size token.

    ``EleutherAI/pythia-v1.1-1.4b-deduped`` -> ``pythia-v1.1-deduped``,
    ``meta-llama/Llama-2-7b-hf`` -> ``Llama-2-hf``, ``Qwen/Qwen1.5-0.5B`` ->
    ``Qwen1.5``, ``gpt2-xl`` -> ``gpt2``. ``None`` when the name gives no family:
    it has no size token (``models/w8``), or nothing is left without it (``7b``).
    """
    base = short_name(name)
    known = known_family(name)
    if known is not None and known[0].name == "gpt2":
        return "gpt2"
    tokens = _size_tokens(base)
    big = [t for t in tokens if t.group("unit").lower() != "k"] or tokens
    if not big:
        return None
    token = big[0]
    stripped = base[: token.start()] + base[token.end() :]
    stripped = re.sub(rf"{_SEP}{{2,}}", lambda m: m.group(0)[0], stripped).strip("-_/.")
    return stripped or None


def family_from_name(name: str) -> str:
    """:func:`family_in_name`, else the name without its organisation: a model whose
    name gives no family is its own (see :func:`folder_family` for an ingest's models)."""
    return family_in_name(name) or short_name(name)


@dataclass(frozen=True)
class Unnamed:
    """A model of one ingest whose family is neither given nor in its name."""

    model: str
    params: float
    step: int | None
    source: Path  # the file (or run folder) it was read from


def _common_folder(parents: list[PurePath]) -> str | None:
    """The last name of the folder all ``parents`` lie in, or None (no common folder)."""
    try:
        common = PurePath(os.path.commonpath([str(p) for p in parents]))
    except ValueError:  # absolute and relative names mixed
        return None
    return common.name if common.name not in ("", ".", "..") else None


def _stem(name: str) -> str:
    """A model name without its numbers: the part a ladder's models share."""
    return re.sub(r"[0-9]+(?:\.[0-9]+)?", "", name).strip("-_. ")


def folder_family(models: Iterable[Unnamed], override: str = "--family") -> tuple[str, str] | None:
    """One family for the models of one ingest whose names give none, and the note saying so.

    The rule, the same for every source: two or more such models whose names
    differ only in their numbers (one stem: ``w8`` and ``w128``, ``step-1000`` and
    ``step-2000``) form one family, named after the common parent folder of their
    names (``models/w8`` and ``models/w128`` -> ``models``), else after the common
    parent folder of the files they were read from. ``None`` -- each model stays
    its own family -- when there are fewer than two, when the stems differ
    (``phi-2`` and ``distilgpt2`` are no ladder, even in one folder), when there
    is no common folder, or when two
    of them have one size at one step (a family has distinct sizes, and same-size
    runs such as seeds are not a curve). The note names ``override``, the option
    that names the family instead.
    """
    items = list(models)
    found: dict[str, Unnamed] = {}
    for item in items:
        found.setdefault(item.model, item)
    if len(found) < 2:
        return None
    names = [PurePosixPath(m.rstrip("/")) for m in found]
    if len({_stem(n.name) for n in names}) != 1 or not _stem(names[0].name):
        return None  # different stems (phi-2, distilgpt2): different models, not one ladder
    family = None
    if all(n.parent != PurePosixPath(".") for n in names):
        family = _common_folder([n.parent for n in names])
    if family is None:
        files = [PurePath(os.path.abspath(u.source)) for u in found.values()]
        family = _common_folder([f.parent for f in files])
    if family is None:
        return None
    sizes = ModelSizes()
    for item in items:
        if sizes.add(family, item.model, item.step, item.params) is not None:
            return None
    listed = ", ".join(list(found)[:3]) + (", ..." if len(found) > 3 else "")
    note = (
        f"{len(found)} models whose names carry no family ({listed}) form one family "
        f"{family!r}, after their common folder; pass {override} to name it otherwise"
    )
    return family, note


# --------------------------------------------------------------------------- sidecar


def read_size_sidecar(path: str | os.PathLike[str]) -> dict[str, float]:
    """Read a ``model,params`` CSV into ``{model: params}``.

    ``params`` may be a number (``1414647808``, ``1.4e9``) or a size string
    (``1.4b``). Every row is checked: a missing model, a missing, unparsable,
    NaN or non-positive size, or one model given two different sizes raises
    :class:`~miragelab.errors.InputError` naming the file, line and field.
    """
    p = Path(path)
    sizes: dict[str, float] = {}
    checked = ModelSizes()
    rows = iter_csv_rows(p)  # physical line numbers, one wording for broken CSV
    _, raw_header = next(rows)
    header = [h.strip() for h in raw_header]
    for column in ("model", "params"):
        if column not in header:
            raise InputError(
                f"size sidecar needs columns model,params; found {','.join(header) or 'none'}",
                path=p,
                line=1,
                field=column,
            )
    for line, cells in rows:
        row = dict(zip(header, cells, strict=True))
        model = (row.get("model") or "").strip()
        if not model:
            raise InputError("missing model name", path=p, line=line, field="model")
        text = (row.get("params") or "").strip()
        if not text:
            raise InputError("missing parameter count", path=p, line=line, field="params")
        try:
            value = parse_size(text)
        except InputError as exc:
            raise InputError(exc.message, path=p, line=line, field="params") from None
        try:  # the params rule of the tables: a finite number > 0
            check_number(value, SCORES.field("params"))
        except BadValue as exc:
            raise InputError(str(exc), path=p, line=line, field="params") from None
        clash = checked.add(None, model, None, value, f"line {line}", distinct=False)
        if clash is not None:
            raise InputError(clash, path=p, line=line, field="params")
        sizes[model] = value
    if not sizes:
        raise InputError("size sidecar has no rows", path=p)
    return sizes


def lookup_size(sizes: dict[str, float] | None, model: str) -> float | None:
    """Size of ``model`` in a sidecar mapping: exact name first, then without organisation."""
    if not sizes:
        return None
    if model in sizes:
        return sizes[model]
    short = short_name(model)
    if short in sizes:
        return sizes[short]
    for key, value in sizes.items():
        if short_name(key) == short:
            return value
    return None
