"""Arithmetic tasks with a character-level vocabulary and a split by operand pairs.

Tasks
-----
``add{n}`` (n = 1..5)
    ``a + b`` with two n-digit operands (no leading zeros; ``add1`` uses 0..9).
    ``add4`` is the paper's 4-digit addition.
``mul2``
    ``a * b`` with two 2-digit operands (10..99), the paper's multiplication.
``addmix``
    ``add1`` .. ``add5`` in one training mix (each example's ``n`` uniform), for
    the paper's third prediction: one ladder, evaluated on each ``n`` apart. A
    part ``addmix-len<L>`` is the held-out pairs of ``add<L>`` whose sum has
    exactly ``L`` digits (no carry out of the leading digit), so its answers
    have exactly ``L`` tokens; training sees carries out too. Prompts are
    left-padded with ``<pad>`` to the width of ``add5``'s, so every answer starts
    at the same position and the digit columns of the operands' ends line up.
    The held-out share of a part with at most :data:`SMALL_TASK` pairs is
    :data:`SMALL_TEST_FRACTION` (``add1``: 50 of 100 pairs; about 27 of them
    sum to one digit), else :data:`TEST_FRACTION`; a part's held-out pairs
    are never trained on, in any part.

Format
------
The prompt is ``"1234+5678="``; the target is the answer's decimal digits at
their natural length (``"6912"``, or ``"10000"`` for ``5000+5000``), and the
model ends its answer with the end token ``<eos>``. Every prompt of a task has
the same length (``2 n + 2`` characters), so prompts batch without padding.
The vocabulary is ``<pad> <eos> 0-9 + * =`` (15 tokens); one character is one
token.

Split
-----
An operand pair ``(a, b)`` is in the test split when a 64-bit hash
(splitmix64) of its index and the seed falls in the lowest ``test_fraction``
of the hash range. Train and test never share a pair, whatever the number of
examples drawn; ``(a, b)`` and ``(b, a)`` are different pairs. Training draws
pairs uniformly with replacement from the train split; the test set is a
seeded permutation of test pairs (all of them for small tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from miragelab.errors import InputError

PAD = "<pad>"
EOS = "<eos>"
CHARS = "0123456789+*="
VOCAB: tuple[str, ...] = (PAD, EOS, *CHARS)
STOI = {s: i for i, s in enumerate(VOCAB)}
#: what :func:`decode_tokens` writes for an id outside the vocabulary
UNKNOWN = "\ufffd"
PAD_ID = STOI[PAD]
EOS_ID = STOI[EOS]
DIGIT0_ID = STOI["0"]

#: default share of operand pairs held out for testing
TEST_FRACTION = 0.1
#: a mix's part with at most this many operand pairs holds out :data:`SMALL_TEST_FRACTION`
SMALL_TASK = 1_000
SMALL_TEST_FRACTION = 0.5
#: tasks with at most this many operand pairs enumerate their test split exactly
_ENUMERATE_MAX = 2_000_000
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Task:
    """One arithmetic task: operator and operand width."""

    name: str
    op: str  # "+" or "*"
    digits: int
    #: a training mix: the operand widths ``n`` of its parts; () for a plain task
    mix: tuple[int, ...] = ()

    @property
    def low(self) -> int:
        return 0 if self.digits == 1 else 10 ** (self.digits - 1)

    @property
    def high(self) -> int:
        return 10**self.digits - 1

    @property
    def width(self) -> int:
        """How many distinct values an operand takes."""
        return self.high - self.low + 1

    @property
    def n_pairs(self) -> int:
        return self.width**2

    @property
    def prompt_len(self) -> int:
        return 2 * self.digits + 2

    @property
    def max_answer_len(self) -> int:
        return len(str(self.apply(self.high, self.high)))

    @property
    def seq_len(self) -> int:
        """Prompt, longest answer and the end token."""
        return self.prompt_len + self.max_answer_len + 1

    def apply(self, a, b):  # noqa: ANN001, ANN201 - ints or integer arrays
        return a + b if self.op == "+" else a * b

    def prompt(self, a: int, b: int) -> str:
        return f"{a}{self.op}{b}="

    def answer(self, a: int, b: int) -> str:
        return str(self.apply(a, b))

    def part_task(self, n: int) -> Task:
        """The plain task of a mix's part ``n`` (``addmix`` -> ``add<n>``): its operands
        and its train/test split."""
        if n not in self.mix:
            raise ValueError(f"task {self.name} has parts {self.mix}, not {n!r}")
        return Task(f"{'add' if self.op == '+' else 'mul'}{n}", self.op, n)

    def part(self, n: int | None = None) -> str:
        """The samples' task name of part ``n`` (``addmix-len3``); a plain task: its name."""
        return f"{self.name}-len{self.part_task(n).digits}" if self.mix else self.name

    def test_fraction(self) -> float:
        """The held-out share of this task's pairs, as a part of a mix."""
        return SMALL_TEST_FRACTION if self.n_pairs <= SMALL_TASK else TEST_FRACTION


TASKS: dict[str, Task] = {f"add{n}": Task(f"add{n}", "+", n) for n in range(1, 6)}
TASKS["mul2"] = Task("mul2", "*", 2)
TASKS["addmix"] = Task("addmix", "+", 5, mix=(1, 2, 3, 4, 5))


def task_parts() -> dict[str, tuple[Task, int | None]]:
    """Every task one can evaluate, by name: each plain task, and each part of a mix
    (``addmix-len3``: ``addmix``'s 3-digit sums of 3-digit numbers)."""
    parts: dict[str, tuple[Task, int | None]] = {}
    for task in TASKS.values():
        if task.mix:
            parts |= {task.part(n): (task, n) for n in task.mix}
        else:
            parts[task.name] = (task, None)
    return parts


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(
            f"unknown task {name!r}; known: {', '.join(TASKS)}", field="task"
        ) from None


# --------------------------------------------------------------------------- split


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def is_test_pair(
    task: Task, index: np.ndarray, seed: int, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """Whether each operand-pair index ``(a - low) * width + (b - low)`` is a test pair."""
    key = _splitmix64(np.asarray(index, dtype=np.int64).astype(np.uint64) ^ _seed_key(seed, task))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53) < test_fraction


def _seed_key(seed: int, task: Task) -> np.uint64:
    mixed = _splitmix64(np.array([seed * 1_000_003 + task.digits * 17 + (task.op == "*")]))
    return mixed[0] & _MASK64


def pair_index(task: Task, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, np.int64) - task.low) * task.width + (np.asarray(b, np.int64) - task.low)


def pairs_of(task: Task, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.asarray(index, dtype=np.int64)
    return index // task.width + task.low, index % task.width + task.low


def sample_train_pairs(
    task: Task, n: int, rng: np.random.Generator, seed: int, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` operand pairs drawn uniformly (with replacement) from the train split; for a
    mix, each example's part first (uniform), then a pair of that part's train split."""
    if task.mix:
        which = rng.choice(np.asarray(task.mix), size=n)
        a, b = np.empty(n, np.int64), np.empty(n, np.int64)
        for part in task.mix:
            pick = which == part
            if not pick.any():
                continue
            sub = task.part_task(part)
            a[pick], b[pick] = sample_train_pairs(
                sub, int(pick.sum()), rng, seed, sub.test_fraction()
            )
        return a, b
    chosen: list[np.ndarray] = []
    have = 0
    while have < n:
        draw = rng.integers(0, task.n_pairs, size=int(n * (1 + 2 * test_fraction)) + 8)
        keep = draw[~is_test_pair(task, draw, seed, test_fraction)]
        chosen.append(keep)
        have += keep.size
    return pairs_of(task, np.concatenate(chosen)[:n])


def heldout_pairs(
    task: Task, n: int, seed: int, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` pairs of the task's test set (fewer when the split is smaller).

    The test set is a seeded permutation of distinct test pairs, so a larger
    ``n`` extends a smaller one.
    """
    rng = np.random.default_rng([seed, 7919, task.digits, task.op == "*"])
    if task.n_pairs <= _ENUMERATE_MAX:
        index = np.arange(task.n_pairs, dtype=np.int64)
        index = index[is_test_pair(task, index, seed, test_fraction)]
        index = rng.permutation(index)[:n]
        return pairs_of(task, index)
    found: list[int] = []
    seen: set[int] = set()
    while len(found) < n:
        draw = rng.integers(
            0, task.n_pairs, size=max(64, int(2 * (n - len(found)) / test_fraction))
        )
        for i in draw[is_test_pair(task, draw, seed, test_fraction)].tolist():
            if i not in seen:
                seen.add(i)
                found.append(i)
    return pairs_of(task, np.asarray(found[:n], dtype=np.int64))


def heldout_part(task: Task, part: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` held-out pairs of a mix's ``part`` whose result has exactly ``part``
    digits (fewer when there are not so many); nested like :func:`heldout_pairs`."""
    sub = task.part_task(part)
    fraction = sub.test_fraction()
    want = n
    while True:
        a, b = heldout_pairs(sub, 3 * want + 16, seed, fraction)
        keep = sub.apply(a, b) < 10**part
        if keep.sum() >= n or len(a) < 3 * want + 16:  # enough, or the whole test split
            return a[keep][:n], b[keep][:n]
        want *= 2


def operand_digits(x: np.ndarray) -> np.ndarray:
    """How many digits each non-negative number has (0 has one)."""
    x = np.asarray(x, dtype=np.int64)
    return 1 + (x[:, None] >= 10 ** np.arange(1, 19, dtype=np.int64)[None, :]).sum(axis=1)


# --------------------------------------------------------------------------- encoding


def digits_tokens(x: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of each number at natural length, left-aligned in ``width`` columns.

    Returns ``(tokens, lengths)``; columns past a number's length hold ``PAD_ID``.
    """
    x = np.asarray(x, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    right = (x[:, None] // powers[None, :]) % 10  # right-aligned, leading zeros
    lengths = 1 + (x[:, None] >= powers[None, :-1]).sum(axis=1)  # powers 10**(w-1) .. 10
    zeros = width - lengths
    cols = np.arange(width)[None, :] + zeros[:, None]
    tokens = np.take_along_axis(right, np.minimum(cols, width - 1), axis=1) + DIGIT0_ID
    tokens = np.where(np.arange(width)[None, :] < lengths[:, None], tokens, PAD_ID)
    return tokens, lengths


def encode_examples(task: Task, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences ``prompt answer <eos> <pad>...`` of length ``task.seq_len``.

    A mix's example is its part's sequence with ``<pad>`` before the prompt up to
    ``task.prompt_len`` (each pair's part is its operands' width). Returns
    ``(tokens, answer_lengths)`` as int64 arrays.
    """
    if task.mix:
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        parts = operand_digits(a)
        tokens = np.full((len(a), task.seq_len), PAD_ID, dtype=np.int64)
        lengths = np.empty(len(a), dtype=np.int64)
        for part in np.unique(parts):
            pick = parts == part
            sub = task.part_task(int(part))
            rows, lengths[pick] = encode_examples(sub, a[pick], b[pick])
            start = task.prompt_len - sub.prompt_len
            tokens[pick, start : start + rows.shape[1]] = rows
        return tokens, lengths
    n = task.digits
    at, _ = digits_tokens(a, n)
    bt, _ = digits_tokens(b, n)
    rows = len(at)
    op = np.full((rows, 1), STOI[task.op])
    eq = np.full((rows, 1), STOI["="])
    m = task.max_answer_len
    ans, lengths = digits_tokens(task.apply(np.asarray(a, np.int64), np.asarray(b, np.int64)), m)
    tail = np.concatenate([ans, np.full((rows, 1), PAD_ID)], axis=1)
    tail[np.arange(rows), lengths] = EOS_ID
    tokens = np.concatenate([at, op, bt, eq, tail], axis=1).astype(np.int64)
    return tokens, lengths


def encode_text(text: str) -> list[int]:
    """Token ids of a plain string of vocabulary characters."""
    try:
        return [STOI[c] for c in text]
    except KeyError as exc:
        raise InputError(f"character {exc.args[0]!r} is not in the vocabulary") from None


def decode_tokens(ids) -> str:  # noqa: ANN001 - any iterable of ints
    """Characters of ``ids`` up to the first ``<eos>``; ``<pad>`` is dropped. An id past the
    vocabulary (a model's embedding may have spare rows it can still emit) reads as
    :data:`UNKNOWN`, so such an answer is wrong, not an error."""
    chars = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i != PAD_ID:
            chars.append(VOCAB[i] if 0 <= i < len(VOCAB) else UNKNOWN)
    return "".join(chars)
