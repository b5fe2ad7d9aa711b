"""Task builders: one per task of the Streamo-Instruct mixture, registered by name."""

from collections.abc import Iterable

from streamo_data.core.errors import UserError
from streamo_data.corpus.tasks.base import (
    NEVER_SEEN,
    Candidate,
    Reject,
    TaskBuilder,
    build_all,
    task_rng,
)
from streamo_data.corpus.tasks.narration import Narration
from streamo_data.corpus.tasks.offline_qa import OfflineQA
from streamo_data.corpus.tasks.span_captioning import ActionCaptioning, DenseCaptioning
from streamo_data.corpus.tasks.temporal_grounding import TemporalGrounding
from streamo_data.corpus.tasks.time_sensitive_qa import TimeSensitiveQA

BUILDERS: dict[str, type[TaskBuilder]] = {
    builder.name: builder
    for builder in (Narration, DenseCaptioning, ActionCaptioning, TemporalGrounding, TimeSensitiveQA, OfflineQA)
}


def check_task_names(names: Iterable[str], what: str = "tasks") -> None:
    """The one check of task names (the CLI's --tasks, a build, a mixture config's tasks), with one
    message: an unknown name would otherwise build nothing for it without a word."""
    unknown = [name for name in names if name not in BUILDERS]
    if unknown:
        raise UserError(f"{what}: unknown task(s) {', '.join(unknown)}; known: {', '.join(sorted(BUILDERS))}")

__all__ = [
    "BUILDERS", "NEVER_SEEN", "ActionCaptioning", "Candidate", "DenseCaptioning", "Narration", "OfflineQA",
    "Reject", "TaskBuilder", "TemporalGrounding", "TimeSensitiveQA", "build_all", "check_task_names", "task_rng",
]
