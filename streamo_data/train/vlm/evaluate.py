"""Scoring a fine-tuned VLM as it would run: free-running streaming inference over each sample of a split,
the sample's own user turns (its questions on their frames), the model's own earlier replies in its
context; the per-frame states scored as the baseline's are (state precision/recall/F1, response timing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamo_data.core.errors import UserError
from streamo_data.formats.render import render_sample
from streamo_data.release.read import iter_release_samples
from streamo_data.runtime.runner import progress_bar
from streamo_data.store.io import write_text_atomic
from streamo_data.train.data import STATE_INDEX
from streamo_data.train.metrics import confusion, state_scores, timing_errors
from streamo_data.train.vlm.frames import FrameCache
from streamo_data.train.vlm.loop import load_model
from streamo_data.train.vlm.predict import stream_replies


def evaluate_vlm(run_dir: Path, release_dir: Path, split: str = "validation",
                 video_root: Path | None = None) -> dict[str, Any]:
    settings = json.loads((run_dir / "config.json").read_text())
    loaded = load_model(run_dir / "model")
    cache = FrameCache(run_dir / "frames", video_root or Path(settings["video_root"]), settings["frame_side"])
    predicted, truth, lines = [], [], []
    samples = list(iter_release_samples(release_dir, split))
    if not samples:
        raise UserError(f"{release_dir} has no {split} samples")
    with progress_bar(transient=True) as progress:
        for sample in progress.track(samples, description=f"streaming ({split})"):
            frames = cache.get(sample.video_id, sample.video_path, sample.fps)[:settings["max_frames"]]
            turns = [m["content"] for m in render_sample(sample)["messages"] if m["role"] == "user"]
            replies = stream_replies(loaded, frames, turns[:len(frames)])
            states = np.array([STATE_INDEX[str(reply.state)] for reply in replies], np.int64)
            predicted.append(states)
            truth.append(np.array([STATE_INDEX[s] for s in sample.states[:len(states)]], np.int64))
            lines.append(json.dumps({"sample_id": sample.sample_id, "task": sample.task,
                                     "said": {r.frame: r.text for r in replies if r.text}}))
    report = {"split": split, "samples": len(samples), "states": state_scores(predicted, truth),
              "timing": timing_errors(predicted, truth), "confusion": confusion(predicted, truth)}
    write_text_atomic(run_dir / f"predictions_{split}.jsonl", "\n".join(lines) + "\n")
    write_text_atomic(run_dir / f"evaluation_{split}.json", json.dumps(report, indent=2))
    return report
