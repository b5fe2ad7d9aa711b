"""The full Streamo-Instruct mixture: sources -> recipes -> plan -> parts -> release, on Ray, resumable.

One module a step; this package only re-exports their public names (``config``, ``sources``, ``annotators``,
``dry_run``, ``batches``, ``plan``, ``build``, ``run``).

1. **recipes**: each source's annotation file becomes ``WORK/sources/<name>/{events,videos}.parquet``
   (skipped when its inputs are unchanged); a source with videos and no annotation file is ingested.
1b. **annotators**: each LLM annotator a source names runs over that source's videos (through
   :func:`streamo_data.stages.annotate_llm.run_llm_annotation`: cached in ``WORK/llm_cache``, resumable,
   rate-limited, on Ray) and adds events whose ``source`` is ``<source>:<annotator>`` (``...:<type>`` for
   QA). Skipped when its stamp (the source's stamp, kind, model, endpoint, prompt hash, window) is
   unchanged and its last run lost no request; a changed model drops its old events and runs again.
2. **plan**: a pass over every video (in batches, on Ray) lists each task's candidates by a 64-bit hash
   of ``(seed, candidate key)``; a task's quota takes the candidates with the smallest hashes, so the
   choice is exact, seeded, and independent of order and of parallelism. Validation videos are chosen
   the same way (a hash rank of video ids), whole videos at a time. The plan is saved in ``plan.json``.
3. **parts**: a second pass builds the chosen candidates, batch by batch, each batch into its own
   ``WORK/parts/part-NNNNNN.parquet`` (written atomically). A rerun skips batches already written, so a
   killed build resumes where it stopped and produces the same bytes.
4. **release**: the parts are streamed, in batch order, through the shard writer, deduplicated by
   sample id; then checksums, the manifest and the dataset card.

Memory stays flat as the corpus grows: workers hold one batch of videos; the driver holds the plan
(8 bytes a candidate while planning) and the set of sample ids seen (for deduplication).
"""

from __future__ import annotations

from streamo_data.pipelines.mixture.annotators import (
    annotator_stamp,
    annotator_stamps,
    lacking_videos,
    require_videos,
    run_annotators,
)
from streamo_data.pipelines.mixture.batches import allowed_events, load_batch, selected_by, visible_batch
from streamo_data.pipelines.mixture.build import PART_SCHEMA, BuildSpec, PartSummary, build_item, part_path
from streamo_data.pipelines.mixture.config import (
    GENERATED,
    NAME,
    AnnotatorConfig,
    MixtureConfig,
    SourceConfig,
    TaskQuota,
    expand_env,
)
from streamo_data.pipelines.mixture.dry_run import SpendRow, dry_run
from streamo_data.pipelines.mixture.plan import BatchSpec, Plan, candidate_hash, make_plan, plan_item
from streamo_data.pipelines.mixture.run import MixtureResult, run_mixture
from streamo_data.pipelines.mixture.sources import RecipeSpec, recipe_item, run_sources, source_stamp

__all__ = [
    "GENERATED",
    "NAME",
    "PART_SCHEMA",
    "AnnotatorConfig",
    "BatchSpec",
    "BuildSpec",
    "MixtureConfig",
    "MixtureResult",
    "PartSummary",
    "Plan",
    "RecipeSpec",
    "SourceConfig",
    "SpendRow",
    "TaskQuota",
    "allowed_events",
    "annotator_stamp",
    "annotator_stamps",
    "build_item",
    "candidate_hash",
    "dry_run",
    "expand_env",
    "lacking_videos",
    "load_batch",
    "make_plan",
    "part_path",
    "plan_item",
    "recipe_item",
    "require_videos",
    "run_annotators",
    "run_mixture",
    "run_sources",
    "selected_by",
    "source_stamp",
    "visible_batch",
]
