"""Arithmetic tasks with a character-level vocabulary and a split by operand pairs.

Tasks
-----
``add{n}`` (n = 1..5)
    ``a + b`` with two n-digit operands (no leading zeros; ``add1`` uses 0..9).
    ``add4`` is the paper's 4-digit addition.
``mul2``
    ``a * b`` with two 2-digit operands (10..99), the paper's multiplication.
``addlast5``
    The last ``L`` digits of ``a + b`` (``L`` = 1..5), ``a`` and ``b`` written as
    5 digits (00000..99999): a mix of five tasks whose answers have exactly ``L``
    tokens, for the paper's third prediction (exact match sharpens as ``L``
    grows). The prompt names ``L``: ``"3:01234+56789="`` -> ``"023"``. Every ``L``
    draws its operands from the same 10^10 pairs, so each has a large held-out
    set (1-digit sums alone would give 100 pairs, too few to hold any out), and
    one held-out pair is asked at every ``L``: the same models on the same
    operands, only the answer's length changes. Digit ``i`` from the right is
    the same computation at every ``L >= i``; the digits are not equally hard
    (the units digit needs no carry), so ``L`` also adds harder digits, as any
    longer arithmetic answer does. Samples of ``L`` have task ``addlast5-len<L>``
    (:meth:`Task.part`).

Format
------
The prompt is ``"1234+5678="``; the target is the answer's decimal digits at
their natural length (``"6912"``, or ``"10000"`` for ``5000+5000``), and the
model ends its answer with the end token ``<eos>``. Every prompt of a task has
the same length (``2 n + 2`` characters, 4 more for ``addlast5``'s ``"L:"``
and leading zeros), so prompts batch without padding. The vocabulary is
``<pad> <eos> 0-9 + * = :`` (16 tokens); one character is one token.

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
CHARS = "0123456789+*=:"
VOCAB: tuple[str, ...] = (PAD, EOS, *CHARS)
STOI = {s: i for i, s in enumerate(VOCAB)}
PAD_ID = STOI[PAD]
EOS_ID = STOI[EOS]
DIGIT0_ID = STOI["0"]

#: default share of operand pairs held out for testing
TEST_FRACTION = 0.1
#: tasks with at most this many operand pairs enumerate their test split exactly
_ENUMERATE_MAX = 2_000_000
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Task:
    """One arithmetic task: operator and operand width."""

    name: str
    op: str  # "+" or "*"
    digits: int
    #: answer lengths of a "last L digits" mix (operands zero-padded); () for a plain task
    tail: tuple[int, ...] = ()

    @property
    def low(self) -> int:
        return 0 if self.digits == 1 or self.tail else 10 ** (self.digits - 1)

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
        return 2 * self.digits + 2 + (2 if self.tail else 0)

    @property
    def max_answer_len(self) -> int:
        if self.tail:
            return max(self.tail)
        return len(str(self.apply(self.high, self.high)))

    @property
    def seq_len(self) -> int:
        """Prompt, longest answer and the end token."""
        return self.prompt_len + self.max_answer_len + 1

    def apply(self, a, b):  # noqa: ANN001, ANN201 - ints or integer arrays
        return a + b if self.op == "+" else a * b

    def prompt(self, a: int, b: int, length: int | None = None) -> str:
        if self.tail:
            d = self.digits
            return f"{self._length(length)}:{a:0{d}d}{self.op}{b:0{d}d}="
        return f"{a}{self.op}{b}="

    def answer(self, a: int, b: int, length: int | None = None) -> str:
        if self.tail:
            n = self._length(length)
            return f"{self.apply(a, b) % 10**n:0{n}d}"
        return str(self.apply(a, b))

    def part(self, length: int | None = None) -> str:
        """The samples' task name of answer length ``length`` (a plain task: its name)."""
        return f"{self.name}-len{self._length(length)}" if self.tail else self.name

    def _length(self, length: int | None) -> int:
        if length not in self.tail:
            raise ValueError(f"task {self.name} asks for L in {self.tail}, not {length!r}")
        return int(length)  # type: ignore[arg-type]


TASKS: dict[str, Task] = {f"add{n}": Task(f"add{n}", "+", n) for n in range(1, 6)}
TASKS["mul2"] = Task("mul2", "*", 2)
TASKS["addlast5"] = Task("addlast5", "+", 5, tail=(1, 2, 3, 4, 5))


def task_parts() -> dict[str, tuple[Task, int | None]]:
    """Every task one can evaluate, by name: each plain task, and each answer length of a
    mix (``addlast5-len3``: ``addlast5`` asked for 3 digits)."""
    parts: dict[str, tuple[Task, int | None]] = {}
    for task in TASKS.values():
        if task.tail:
            parts |= {task.part(n): (task, n) for n in task.tail}
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
    tag = task.digits * 17 + (task.op == "*") + (1_009 if task.tail else 0)
    mixed = _splitmix64(np.array([seed * 1_000_003 + tag]))
    return mixed[0] & _MASK64


def pair_index(task: Task, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, np.int64) - task.low) * task.width + (np.asarray(b, np.int64) - task.low)


def pairs_of(task: Task, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.asarray(index, dtype=np.int64)
    return index // task.width + task.low, index % task.width + task.low


def sample_train_pairs(
    task: Task, n: int, rng: np.random.Generator, seed: int, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` operand pairs drawn uniformly (with replacement) from the train split."""
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
    rng = np.random.default_rng([seed, 7919, task.digits, task.op == "*", *task.tail])
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


def padded_digits(x: np.ndarray, width: int) -> np.ndarray:
    """Tokens of each number written with exactly ``width`` digits (leading zeros; a
    number of more digits keeps its last ``width``)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (np.asarray(x, dtype=np.int64)[:, None] // powers[None, :]) % 10 + DIGIT0_ID


def answer_lengths(task: Task, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """The answer length asked of each of ``n`` training examples: uniform over
    ``task.tail`` (None for a plain task, whose answers have their natural length)."""
    return rng.choice(np.asarray(task.tail), size=n) if task.tail else None


def _encode_tail(
    task: Task, a: np.ndarray, b: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``L:aaaaa+bbbbb=`` then the last ``L`` digits of the result and ``<eos>``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rows, m = lengths.size, task.max_answer_len
    value = task.apply(np.asarray(a, np.int64), np.asarray(b, np.int64)) % 10**lengths
    cols = np.arange(m)[None, :]
    shift = np.clip(lengths[:, None] - 1 - cols, 0, None)  # digit j of an L-digit answer
    digits = (value[:, None] // 10**shift) % 10 + DIGIT0_ID
    ans = np.where(cols < lengths[:, None], digits, PAD_ID)
    tail = np.concatenate([ans, np.full((rows, 1), PAD_ID)], axis=1)
    tail[np.arange(rows), lengths] = EOS_ID
    head = [
        (lengths + DIGIT0_ID)[:, None],
        np.full((rows, 1), STOI[":"]),
        padded_digits(a, task.digits),
        np.full((rows, 1), STOI[task.op]),
        padded_digits(b, task.digits),
        np.full((rows, 1), STOI["="]),
    ]
    return np.concatenate([*head, tail], axis=1).astype(np.int64), lengths


def encode_examples(
    task: Task, a: np.ndarray, b: np.ndarray, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences ``prompt answer <eos> <pad>...`` of length ``task.seq_len``.

    ``lengths``: the answer length asked of each example, for a task with a
    ``tail`` (required there, refused elsewhere). Returns ``(tokens,
    answer_lengths)`` as int64 arrays.
    """
    if task.tail:
        if lengths is None or not np.isin(lengths, task.tail).all():
            raise ValueError(f"task {task.name} needs answer lengths in {task.tail}")
        return _encode_tail(task, a, b, lengths)
    if lengths is not None:
        raise ValueError(f"task {task.name} answers at its natural length")
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
    """Characters of ``ids`` up to the first ``<eos>``; ``<pad>`` is dropped."""
    chars = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i != PAD_ID:
            chars.append(VOCAB[i])
    return "".join(chars)
