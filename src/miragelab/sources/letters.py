"""Answer letters of multiple-choice prompts: the log-prob a model gave each letter.

Harnesses that ask a model to answer with a letter (HELM's
``multiple_choice_joint``, Inspect's ``multiple_choice`` solver) keep, at best,
the top log-probs of the token where the model wrote its letter. Each choice's
log-prob is read there, under the letter alone (``"A"``) and after a space
(``" A"``), as tokenizers spell a letter that follows other text; where the top
log-probs hold both spellings, the letter's probability is their sum (the model
writes that letter either way), so choices are ranked alike whichever spelling
the model wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miragelab.schema import BadValue, check_logprob

__all__ = ["letter_logprobs"]


def letter_logprobs(top: Mapping[str, Any] | None, letters: Sequence[str]) -> list[float] | None:
    """The log-prob of each of ``letters`` among the top log-probs of one token.

    Parameters
    ----------
    top : mapping of str to float, or None
        The token's top log-probs, ``{token text: log-prob}``; anything but a
        mapping means the token kept none.
    letters : sequence of str
        The answer letters, in the order of the choices.

    Returns
    -------
    list of float or None
        One log-prob per letter: ``log(p("A") + p(" A"))`` over the spellings the
        token's top log-probs hold. None when some letter has no
        usable log-prob there (absent, not a number, not finite or above 0):
        a row with letter log-probs for some choices only would rank choices
        it never saw.
    """
    if not isinstance(top, Mapping):
        return None
    out = []
    for letter in letters:
        spelled = [top[s] for s in (letter, " " + letter) if s in top]
        try:
            found = [check_logprob(v) for v in spelled] or [check_logprob(None)]
        except BadValue:
            return None
        out.append(float(np.logaddexp.reduce(found)))
    return out
