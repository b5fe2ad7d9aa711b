"""Task builders: one per task of the Streamo-Instruct mixture, registered by name."""

from streamo_data.tasks.base import (
    NEVER_SEEN,
    Candidate,
    Reject,
    TaskBuilder,
    build_all,
    task_rng,
)
from streamo_data.tasks.narration import Narration
from streamo_data.tasks.offline_qa import OfflineQA
from streamo_data.tasks.span_captioning import ActionCaptioning, DenseCaptioning
from streamo_data.tasks.temporal_grounding import TemporalGrounding
from streamo_data.tasks.time_sensitive_qa import TimeSensitiveQA

BUILDERS: dict[str, type] = {
    builder.name: builder
    for builder in (Narration, DenseCaptioning, ActionCaptioning, TemporalGrounding, TimeSensitiveQA, OfflineQA)
}

__all__ = [
    "BUILDERS", "NEVER_SEEN", "ActionCaptioning", "Candidate", "DenseCaptioning", "Narration", "OfflineQA",
    "Reject", "TaskBuilder", "TemporalGrounding", "TimeSensitiveQA", "build_all", "task_rng",
]
