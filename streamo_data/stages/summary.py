"""What a work-dir stage reports: one shape for every stage, so the CLI prints each with one table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StageSummary:
    """What a stage did, for the CLI's table and for tests."""

    done: int = 0
    reused: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    produced: Counter[str] = field(default_factory=Counter)
    # what a builder chose not to make, with its reason (e.g. evidence never shown): no error of the run
    not_built: Counter[str] = field(default_factory=Counter)
