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


def match_responses(said: np.ndarray, wanted: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (true frame, predicted frame), one-to-one, closest first: a predicted response can
    explain one true response only, so answering on every frame cannot look well timed."""
    pairs = sorted((abs(int(p) - int(t)), int(t), int(p)) for t in wanted for p in said)
    used_true: set[int] = set()
    used_said: set[int] = set()
    matched = []
    for _, true, pred in pairs:
        if true not in used_true and pred not in used_said:
            used_true.add(true)
            used_said.add(pred)
            matched.append((true, pred))
    return matched


def timing_errors(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, float]:
    """Response timing with both kinds of error counted: each true response is matched one-to-one
    with the nearest unmatched predicted response of its sample (distance in frames); true responses
    left over are *missed*, predicted ones left over are *false alarms*. ``within_k_frames`` is the
    share of true responses matched within k frames (recall); ``precision_within_k`` the share of
    predicted responses that are such a match; ``f1_within_1`` combines the two at one frame."""
    distances: list[int] = []
    missed, false_alarms, predicted_total = 0, 0, 0
    for pred, true in zip(predicted, truth, strict=True):
        wanted, said = np.flatnonzero(true == RESPONSE), np.flatnonzero(pred == RESPONSE)
        predicted_total += len(said)
        matched = match_responses(said, wanted)
        distances.extend(abs(t - p) for t, p in matched)
        missed += len(wanted) - len(matched)
        false_alarms += len(said) - len(matched)
    total = len(distances) + missed
    array = np.array(distances) if distances else np.zeros(0)

    def recall(k: int) -> float:
        return float((array <= k).sum() / total) if total else 0.0

    def precision(k: int) -> float:
        return float((array <= k).sum() / predicted_total) if predicted_total else 0.0

    p1, r1 = precision(1), recall(1)
    return {
        "responses": total, "predicted": predicted_total, "missed": missed, "false_alarms": false_alarms,
        "mean_abs_frames": float(array.mean()) if len(array) else float("nan"),
        "median_abs_frames": float(np.median(array)) if len(array) else float("nan"),
        "within_1_frame": r1, "within_2_frames": recall(2),
        "precision_within_1": p1, "precision_within_2": precision(2),
        "f1_within_1": 2 * p1 * r1 / (p1 + r1) if p1 + r1 else 0.0,
    }


def confusion(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> list[list[int]]:
    """Frames per (true state, predicted state), rows and columns in STATE_NAMES order."""
    matrix = np.zeros((len(STATE_NAMES), len(STATE_NAMES)), np.int64)
    for pred, true in zip(predicted, truth, strict=True):
        np.add.at(matrix, (true.astype(np.int64), pred.astype(np.int64)), 1)
    return matrix.tolist()


def timing_offsets(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> list[int]:
    """Predicted minus true frame of every matched response (negative: too early), matched as
    :func:`timing_errors` matches them."""
    offsets: list[int] = []
    for pred, true in zip(predicted, truth, strict=True):
        matched = match_responses(np.flatnonzero(pred == RESPONSE), np.flatnonzero(true == RESPONSE))
        offsets.extend(p - t for t, p in matched)
    return sorted(offsets)
