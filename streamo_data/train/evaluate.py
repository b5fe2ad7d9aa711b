"""Evaluating a run on a release split: per-state P/R/F1, response timing, and what it would say.

What it would say is retrieved, not generated: for each task, the most common answer template of the
training split (numbers replaced by the predicted span's start and end, when the template has two).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamo_data.core.align import frame_end
from streamo_data.plots.training import plot_confusion, plot_timing
from streamo_data.store.io import write_text_atomic
from streamo_data.store.manifest import read_manifest
from streamo_data.train.data import STATE_NAMES, Example, load_examples
from streamo_data.train.features import FeatureStore
from streamo_data.train.loop import load_model, predict
from streamo_data.train.metrics import RESPONSE, confusion, state_scores, timing_errors, timing_offsets

NUMBER = re.compile(r"\d+(?:\.\d+)?s")


def answer_templates(examples: list[Example]) -> dict[str, str]:
    """Per task, the commonest answer with its times blanked out."""
    counts: dict[str, Counter[str]] = {}
    for example in examples:
        for response in example.row["responses"]:
            counts.setdefault(example.task, Counter())[NUMBER.sub("{t}", response["content"])] += 1
    return {task: counter.most_common(1)[0][0] for task, counter in counts.items()}


def fill(template: str, predicted: np.ndarray, frame: int, fps: float) -> str:
    """The template with the predicted span written in seconds, read back through the alignment
    rule: a standby run over frames ``a .. frame - 1`` means evidence from ``frame_end(a)`` to
    ``frame_end(frame - 1)`` (a time T lies on frame ceil(T * fps) - 1, so frame ``a`` ends at the
    span's start); with no standby run, the span is the instant of the response frame."""
    start = frame
    while start > 0 and predicted[start - 1] == 1:
        start -= 1
    begin, end = (frame_end(start, fps), frame_end(frame - 1, fps)) if start < frame else (frame_end(frame, fps),) * 2
    times = iter((f"{begin:g}s", f"{end:g}s"))
    return re.sub(r"\{t\}", lambda _: next(times, "?"), template)


def evaluate_run(run_dir: Path, release_dir: Path, split: str = "validation", video_root: Path | None = None,
                 cache_dir: str | None = None) -> dict[str, Any]:
    read_manifest(release_dir)  # before the model: a wrong folder is named before any work
    model, config, extra = load_model(run_dir)
    store = FeatureStore(run_dir / "features", video_root or Path(extra["video_root"]))
    examples = load_examples(release_dir, split, store, config.text_buckets, config.max_frames,
                             config.dataset_config, cache_dir)
    train_examples = load_examples(release_dir, "train", store, config.text_buckets, config.max_frames,
                                   config.dataset_config, cache_dir)
    predicted = predict(model, examples)
    truth = [e.labels for e in examples]
    report = state_report(split, predicted, truth)
    templates = answer_templates(train_examples)
    lines = []
    for example, states in zip(examples, predicted, strict=True):
        said = {int(f): fill(templates.get(example.task, ""), states, int(f), example.row["fps"])
                for f in np.flatnonzero(states == RESPONSE)}
        lines.append(json.dumps({"sample_id": example.sample_id, "task": example.task,
                                 "predicted": [STATE_NAMES[s] for s in states], "said": said}))
    write_evaluation(run_dir, split, report, lines)
    return report


def state_report(split: str, predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, Any]:
    """The per-state, timing and confusion scores of one split's predicted frame states."""
    return {"split": split, "samples": len(predicted), "states": state_scores(predicted, truth),
            "timing": timing_errors(predicted, truth), "confusion": confusion(predicted, truth),
            "timing_offsets": timing_offsets(predicted, truth)}


def write_evaluation(out_dir: Path, split: str, report: dict[str, Any], lines: list[str]) -> None:
    """``evaluation_<split>.json``, ``predictions_<split>.jsonl`` and the confusion and timing plots."""
    write_text_atomic(out_dir / f"predictions_{split}.jsonl", "\n".join(lines) + "\n")
    write_text_atomic(out_dir / f"evaluation_{split}.json", json.dumps(report, indent=2))
    plot_confusion(report["confusion"], out_dir / f"confusion_{split}.png", f"states on {split} frames")
    plot_timing(report["timing_offsets"], report["timing"]["missed"], report["timing"]["false_alarms"],
                out_dir / f"timing_{split}.png", f"response timing on {split}")
