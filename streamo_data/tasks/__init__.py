"""Task builders: one module per task of the Streamo-Instruct mixture, registered by name."""

from streamo_data.tasks.base import Reject, TaskBuilder, task_rng
from streamo_data.tasks.dense_captioning import DenseCaptioning
from streamo_data.tasks.temporal_grounding import TemporalGrounding

BUILDERS: dict[str, type] = {
    TemporalGrounding.name: TemporalGrounding,
    DenseCaptioning.name: DenseCaptioning,
}

__all__ = ["BUILDERS", "DenseCaptioning", "Reject", "TaskBuilder", "TemporalGrounding", "task_rng"]
