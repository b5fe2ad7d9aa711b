"""Text as a key: when two descriptions, questions or answers count as the same one.

Task builders group queries and drop repeated answers by it, and the annotators' reply checks refuse an
answer that only repeats the one before it: one rule for both, so a reply the annotator keeps is never
one a builder would then merge away.
"""

from __future__ import annotations

import re


def normalized(text: str) -> str:
    """Case, punctuation and spacing do not make two descriptions different ("light goes out" and
    "Light goes out." are one query, one sample)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
