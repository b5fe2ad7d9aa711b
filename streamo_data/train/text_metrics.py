"""What a model said, against what the sample says at its response frames: ROUGE-L (Google's
``rouge-score``, the implementation captioning papers report), exact agreement, and, for answers that
name a time span (temporal grounding's "The event spans 12s to 15s."), exact span agreement and
temporal IoU.

Each true response is paired with one predicted response, one-to-one and closest in time first (the
timing metrics' pairing, :func:`streamo_data.train.metrics.match_responses`); a true response with no
predicted one scores 0, so a model cannot score by answering rarely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from streamo_data.train.metrics import match_responses

SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*s?\s*(?:to|-|–|until)\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


@dataclass
class SampleAnswers:
    task: str
    truth: dict[int, str]  # response frame -> the sample's answer
    said: dict[int, str]  # response frame -> what the model said


def span_of(text: str) -> tuple[float, float] | None:
    match = SPAN.search(text)
    if not match:
        return None
    start, end = float(match.group(1)), float(match.group(2))
    return (start, end) if start <= end else None


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    overlap = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return overlap / union if union > 0 else float(a == b)


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s.]", " ", text.lower()).split()).rstrip(".")


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def answer_scores(samples: Iterable[SampleAnswers]) -> dict[str, float | int]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge, exact, spans_exact, spans_iou = [], [], [], []
    matched = 0
    for sample in samples:
        pairs = dict(match_responses(np.array(sorted(sample.said)), np.array(sorted(sample.truth))))
        for frame, truth in sample.truth.items():
            said = sample.said.get(pairs[frame], "") if frame in pairs else ""
            matched += frame in pairs
            rouge.append(scorer.score(truth, said)["rougeL"].fmeasure if said else 0.0)
            exact.append(float(bool(said) and normalised(said) == normalised(truth)))
            if (true_span := span_of(truth)) is not None:
                said_span = span_of(said)
                spans_exact.append(float(said_span == true_span))
                spans_iou.append(temporal_iou(said_span, true_span) if said_span else 0.0)
    return {"responses": len(rouge), "matched": matched, "rouge_l": mean(rouge), "exact": mean(exact),
            "span_answers": len(spans_exact), "span_exact": mean(spans_exact), "span_iou": mean(spans_iou)}
