"""Text as a key: when two descriptions, questions or answers count as the same one.

Task builders group queries and drop repeated answers by it, and the annotators' reply checks refuse an
answer that only repeats the one before it: one rule for both, so a reply the annotator keeps is never
one a builder would then merge away.
"""

from __future__ import annotations

import functools
import re

_NOT_WORD = re.compile(r"[^\w\s]")


@functools.lru_cache(maxsize=1 << 16)  # builders key every event's text several times per task and pass
def normalized(text: str) -> str:
    """Case, punctuation and spacing do not make two descriptions different ("light goes out" and
    "Light goes out." are one query, one sample)."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())
