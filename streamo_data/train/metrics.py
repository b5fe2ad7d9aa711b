"""Per-state precision/recall/F1 and response-timing error, the numbers a streaming model lives by."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamo_data.train.data import STATE_NAMES

RESPONSE = 2


def state_scores(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per state over all frames of all samples."""
    pred = np.concatenate(predicted) if predicted else np.zeros(0, np.int64)
    true = np.concatenate(truth) if truth else np.zeros(0, np.int64)
    scores = {}
    for index, name in enumerate(STATE_NAMES):
        hit = int(((pred == index) & (true == index)).sum())
        precision = hit / max(1, int((pred == index).sum()))
        recall = hit / max(1, int((true == index).sum()))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int((true == index).sum())}
    scores["accuracy"] = {"value": float((pred == true).mean()) if len(true) else 0.0}
    return scores


def timing_errors(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, float]:
    """For every true response frame, the distance in frames to the nearest predicted response frame of
    the same sample; a sample with no predicted response at all counts its true responses as missed."""
    distances, missed = [], 0
    for pred, true in zip(predicted, truth, strict=True):
        wanted, said = np.flatnonzero(true == RESPONSE), np.flatnonzero(pred == RESPONSE)
        if not len(wanted):
            continue
        if not len(said):
            missed += len(wanted)
            continue
        distances.extend(int(np.abs(said - frame).min()) for frame in wanted)
    total = len(distances) + missed
    array = np.array(distances) if distances else np.zeros(0)
    return {
        "responses": total, "missed": missed,
        "mean_abs_frames": float(array.mean()) if len(array) else float("nan"),
        "median_abs_frames": float(np.median(array)) if len(array) else float("nan"),
        "within_1_frame": float((array <= 1).sum() / total) if total else 0.0,
        "within_2_frames": float((array <= 2).sum() / total) if total else 0.0,
    }
