"""Answer-text scores: ROUGE-L and exact agreement over true responses (a missed one scores 0), and span
agreement and temporal IoU for answers that name a time span."""

from __future__ import annotations

import pytest

from streamo_data.train.text_metrics import SampleAnswers, answer_scores, span_of, temporal_iou


def test_spans_are_read_from_answers() -> None:
    assert span_of("The event spans 12s to 15.5s.") == (12.0, 15.5)
    assert span_of("from 3 s - 4 s") == (3.0, 4.0)
    assert span_of("It is red.") is None and span_of("spans 9s to 2s") is None
    assert temporal_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)


def test_answers_are_paired_in_time_and_a_missed_one_scores_zero() -> None:
    samples = [
        SampleAnswers("temporal_grounding", {5: "The event spans 2s to 5s.", 12: "The event spans 9s to 12s."},
                      {6: "The event spans 2s to 5s.", 30: "The event spans 9s to 11s."}),
        SampleAnswers("narration", {3: "A man opens the door."}, {}),
    ]
    scores = answer_scores(samples)
    assert scores["responses"] == 3 and scores["matched"] == 2
    assert scores["exact"] == pytest.approx(1 / 3)  # the first grounding answer only
    assert scores["span_answers"] == 2 and scores["span_exact"] == pytest.approx(0.5)
    assert scores["span_iou"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert 1 / 3 < scores["rouge_l"] < 2 / 3  # one exact, one close, one missed
