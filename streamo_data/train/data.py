"""A release as training examples: per-frame features, per-frame state labels, the instruction."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import load_dataset

from streamo_data.core.align import State, frame_of
from streamo_data.core.errors import MissingInput, UserError
from streamo_data.exports.video_check import covers, latest_time
from streamo_data.runtime.runner import progress_bar
from streamo_data.train.features import FeatureStore
from streamo_data.video.backends import DecodeError

STATE_INDEX = {State.SILENCE.value: 0, State.STANDBY.value: 1, State.RESPONSE.value: 2}
STATE_NAMES = ("silence", "standby", "response")


def hashed_tokens(text: str, buckets: int) -> list[int]:
    """Words hashed into ``buckets`` ids (1..buckets-1; 0 pads): a vocabulary that needs no download."""
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return [1 + zlib.crc32(word.encode()) % (buckets - 1) for word in words] or [0]


@dataclass
class Example:
    sample_id: str
    task: str
    features: np.ndarray  # [frames, FEATURE_DIM]
    labels: np.ndarray  # [frames] in {0, 1, 2}
    text: list[int]
    question_frame: int
    row: dict[str, Any]


class ShortVideo(UserError):
    """The file under the video root ends before the sample's latest annotated time (what `streamo videos`
    calls too short, by the same rule): padding it would label repeated last frames with answers they
    never show."""


def to_example(row: dict[str, Any], store: FeatureStore, buckets: int, max_frames: int) -> Example:
    features = store.get(row["video_id"], row["video_path"], row["fps"])
    lasts, latest = len(features) / row["fps"], latest_time(row["questions"], row["responses"])
    if not covers(lasts, latest):
        raise ShortVideo(f"video {row['video_path']}: {lasts:.1f} s under {store.video_root}, but sample"
                         f" {row['sample_id']} annotates up to {latest:.1f} s")
    frames = min(row["num_frames"], max_frames)
    if len(features) < frames:  # a file shorter than its row says: pad with its last frame
        features = np.concatenate([features, np.repeat(features[-1:], frames - len(features), 0)])
    question = row["questions"][0]
    return Example(
        sample_id=row["sample_id"], task=row["task"], features=features[:frames],
        labels=np.array([STATE_INDEX[s] for s in row["states"][:frames]], np.int64),
        text=hashed_tokens(question["content"], buckets),
        question_frame=min(frame_of(question["time"], row["fps"]), frames - 1), row=row,
    )


SKIP_MISSING = "video not found under --video-root"
SKIP_UNREADABLE = "video unreadable (no frame decodes)"
SKIP_SHORT = "video shorter than the sample's latest annotated time"


def load_examples(release_dir: Path, split: str, store: FeatureStore, buckets: int, max_frames: int,
                  config: str = "all", cache_dir: str | None = None,
                  skipped: Counter[str] | None = None) -> list[Example]:
    """Rows of a release split, read with `datasets.load_dataset` as any user would; a split the release
    does not have (a small release may hold no validation videos) gives no examples. A sample whose video
    is missing, unreadable or ends before the sample's latest annotated time is left out and counted in
    ``skipped`` (a corpus is trained on with the videos one has; `streamo videos` says which those are);
    without ``skipped`` it is an error."""
    try:
        dataset = load_dataset(str(release_dir), config, split=split, cache_dir=cache_dir)
    except ValueError as error:
        if "split" not in str(error).lower():
            raise
        return []
    examples: list[Example] = []
    with progress_bar(transient=True) as progress:
        for row in progress.track(dataset, description=f"features ({split})"):
            try:
                examples.append(to_example(row, store, buckets, max_frames))
            except ShortVideo:
                if skipped is None:
                    raise
                skipped[f"{split}: {SKIP_SHORT}"] += 1
            except (MissingInput, DecodeError):
                if skipped is None:
                    raise
                missing = not (store.video_root / row["video_path"]).exists()
                skipped[f"{split}: {SKIP_MISSING if missing else SKIP_UNREADABLE}"] += 1
    return examples


def collate(examples: list[Example]) -> dict[str, torch.Tensor]:
    """Pad to the longest example: features with zeros, labels with -100 (ignored by the loss)."""
    longest = max(len(e.labels) for e in examples)
    dim = examples[0].features.shape[1]
    features = torch.zeros(len(examples), longest, dim)
    labels = torch.full((len(examples), longest), -100, dtype=torch.long)
    for k, example in enumerate(examples):
        features[k, : len(example.labels)] = torch.from_numpy(example.features)
        labels[k, : len(example.labels)] = torch.from_numpy(example.labels)
    text = torch.tensor([t for e in examples for t in e.text], dtype=torch.long)
    offsets = torch.tensor(np.cumsum([0] + [len(e.text) for e in examples[:-1]]), dtype=torch.long)
    question_frame = torch.tensor([e.question_frame for e in examples], dtype=torch.long)
    return {"features": features, "labels": labels, "text": text, "offsets": offsets,
            "question_frame": question_frame}


def state_counts(examples: list[Example]) -> list[int]:
    counts = np.zeros(3, np.int64)
    for example in examples:
        counts += np.bincount(example.labels, minlength=3)
    return counts.tolist()
