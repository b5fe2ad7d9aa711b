"""The train/validation split: by video, drawn in a seeded hash order, so that no video is in both splits
and the split depends only on the set of videos (never on row order, batch or machine)."""

from __future__ import annotations

from collections.abc import Iterable

from streamo_data.core.schema import stable_id


def hash_order(video_ids: Iterable[str], seed: int) -> list[str]:
    """Videos in a seeded hash order: the split depends only on the set of videos, never on row order."""
    return sorted(video_ids, key=lambda v: stable_id(seed, v))


def held_out_share(video_ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The first ``fraction`` of the videos in hash order: at least one, never all, none for fewer
    than two videos or a zero fraction."""
    ordered = hash_order(set(video_ids), seed)
    if len(ordered) < 2 or fraction <= 0:
        return set()
    return set(ordered[: min(len(ordered) - 1, max(1, round(fraction * len(ordered))))])


def validation_videos(videos_by_task: dict[str, set[str]], fraction: float, seed: int) -> set[str]:
    """Videos of the validation split. Whole videos move, so no video is in both splits; each task
    with two or more videos gets at least one of them held out, and no task is left without a train
    video (``load_dataset(..., split="train")`` must work for every task): where the two conflict,
    train wins and that task's validation may stay empty."""
    held = held_out_share(set().union(*videos_by_task.values()) if videos_by_task else set(), fraction, seed)
    if not held:
        return held
    for task in sorted(videos_by_task):
        ids = videos_by_task[task]
        if len(ids) >= 2 and not ids & held:
            held.add(hash_order(ids, seed)[0])
    for task in sorted(videos_by_task):
        ids = videos_by_task[task]
        if ids and ids <= held:
            held.discard(hash_order(ids, seed)[0])
    return held
