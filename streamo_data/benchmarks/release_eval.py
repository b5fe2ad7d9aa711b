"""``streamo evaluate --base-url``: an OpenAI-compatible endpoint scored on a release split as a fine-tuned
VLM is (:mod:`streamo_data.train.vlm.evaluate`): each sample streamed frame by frame with its own questions
on their frames, the endpoint's own replies in its conversation, state tokens read from its replies, and
the same per-state, timing and answer-text metrics. Frames are decoded once per video by the ``export
frames`` extractor; replies are cached, so a rerun sends nothing again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from streamo_data.benchmarks.ovo.frames import video_frames
from streamo_data.benchmarks.ovo.models import EndpointModel
from streamo_data.benchmarks.ovo.protocols import Job
from streamo_data.core.align import time_tag
from streamo_data.core.errors import UserError
from streamo_data.core.schema import StreamingSample
from streamo_data.formats.render import render_sample
from streamo_data.runtime.runner import progress_bar
from streamo_data.sources.annotators.client import RequestFailed
from streamo_data.train.vlm.evaluate import SplitScorer, split_samples


def sample_job(sample: StreamingSample, frames: int) -> Job:
    """The sample's questions on their frames, as its stream-format turns carry them."""
    questions = {}
    users = [m["content"] for m in render_sample(sample)["messages"] if m["role"] == "user"]
    for frame, content in enumerate(users[:frames]):
        head = content.rpartition(f"{time_tag(frame, sample.fps)}\n")[0].rstrip("\n")
        if head:
            questions[frame] = head
    return Job(sample.sample_id, {}, questions=questions, last_frame=frames - 1, stop_on_response=False,
               fps=sample.fps)


async def evaluate_endpoint(model: EndpointModel, release_dir: Path, split: str, video_root: Path, out_dir: Path,
                            max_frames: int, max_side: int = 448) -> tuple[dict[str, Any], dict[str, int]]:
    """The report, and the samples left out by reason (an unreadable video, a request that kept failing)."""
    scorer, skipped = SplitScorer(), dict[str, int]()
    samples = split_samples(release_dir, split)
    try:
        with progress_bar(transient=True) as progress:
            for sample in progress.track(samples, description=f"streaming ({split}) to {model.name}"):
                try:
                    frames = await asyncio.to_thread(video_frames, video_root, sample.video_path, out_dir / "frames",
                                                     sample.fps, max_side)
                    count = min(len(frames), sample.num_frames, max_frames)
                    replies = await model.stream(frames[:count], sample_job(sample, count))
                except Exception as error:  # noqa: BLE001 - one sample's failure is counted, never the run's end
                    reason = str(error) if isinstance(error, RequestFailed) else type(error).__name__
                    skipped[reason] = skipped.get(reason, 0) + 1
                    continue
                scorer.add(sample, replies)
    finally:
        await model.close()
    if not scorer.predicted:
        raise UserError(f"no {split} sample of {release_dir} could be evaluated ({skipped})")
    return scorer.report(split, out_dir), skipped
