"""Scoring a fine-tuned VLM as it would run: free-running streaming inference over each sample of a split,
the sample's own user turns (its questions on their frames), the model's own earlier replies in its
context; the per-frame states scored as the baseline's are (state precision/recall/F1, response timing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamo_data.core.errors import UserError
from streamo_data.core.schema import StreamingSample
from streamo_data.formats.render import render_sample
from streamo_data.release.read import iter_release_samples
from streamo_data.runtime.runner import progress_bar
from streamo_data.train.data import STATE_INDEX
from streamo_data.train.evaluate import state_report, write_evaluation
from streamo_data.train.text_metrics import SampleAnswers, answer_scores
from streamo_data.train.vlm.frames import FrameCache
from streamo_data.train.vlm.loop import load_model
from streamo_data.train.vlm.predict import stream_replies


class SplitScorer:
    """The scores of free-running replies over a split's samples, one sample at a time (any model that
    answers each frame turn with a state: a fine-tuned VLM here, an endpoint in ``benchmarks``)."""

    def __init__(self) -> None:
        self.predicted: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.answers: list[SampleAnswers] = []
        self.lines: list[str] = []

    def add(self, sample: StreamingSample, replies: list[tuple[int, str, str]]) -> None:
        """``replies``: (frame, state, text) for the sample's first frames, one a frame."""
        states = np.array([STATE_INDEX[state] for _, state, _ in replies], np.int64)
        self.predicted.append(states)
        self.truth.append(np.array([STATE_INDEX[s] for s in sample.states[:len(states)]], np.int64))
        said = {frame: text for frame, state, text in replies if state == "response"}
        self.answers.append(SampleAnswers(sample.task, {f: sample.answers[f] for f in range(len(states))
                                                        if sample.states[f] == "response"}, said))
        self.lines.append(json.dumps({"sample_id": sample.sample_id, "task": sample.task, "said": said}))

    def report(self, split: str, out_dir: Path) -> dict[str, Any]:
        report = {**state_report(split, self.predicted, self.truth), "answers": answer_scores(self.answers)}
        write_evaluation(out_dir, split, report, self.lines)
        return report


def split_samples(release_dir: Path, split: str) -> list[StreamingSample]:
    samples = list(iter_release_samples(release_dir, split))
    if not samples:
        raise UserError(f"{release_dir} has no {split} samples")
    return samples


def evaluate_vlm(run_dir: Path, release_dir: Path, split: str = "validation",
                 video_root: Path | None = None) -> dict[str, Any]:
    settings = json.loads((run_dir / "config.json").read_text())
    loaded = load_model(run_dir / "model")
    cache = FrameCache(run_dir / "frames", video_root or Path(settings["video_root"]), settings["frame_side"])
    scorer = SplitScorer()
    samples = split_samples(release_dir, split)
    with progress_bar(transient=True) as progress:
        for sample in progress.track(samples, description=f"streaming ({split})"):
            frames = cache.get(sample.video_id, sample.video_path, sample.fps)[:settings["max_frames"]]
            turns = [m["content"] for m in render_sample(sample)["messages"] if m["role"] == "user"]
            replies = stream_replies(loaded, frames, turns[:len(frames)])
            scorer.add(sample, [(r.frame, str(r.state), r.text) for r in replies])
    return scorer.report(split, run_dir)
