"""The state-alignment rule on hand-worked examples, at 1 and 2 fps, with its edge cases."""

from __future__ import annotations

import pytest

from streamo_data.core.align import State, align, answer_frame, frame_of, lossless_order, time_tag
from streamo_data.core.schema import QuestionTurn, ResponseTurn

S, B, R = State.SILENCE, State.STANDBY, State.RESPONSE


def q(content: str, time: float) -> QuestionTurn:
    return QuestionTurn(content=content, time=time)


def span(content: str, start: float, end: float) -> ResponseTurn:
    return ResponseTurn(content=content, st_time=start, end_time=end)


def instant(content: str, time: float) -> ResponseTurn:
    return ResponseTurn(content=content, time=time)


@pytest.mark.parametrize(("time", "fps", "frame"), [
    (0, 1, 0), (1, 1, 0), (5, 1, 4), (0.3, 1, 0), (2.5, 1, 2), (4.2, 1, 4),
    (0, 2, 0), (0.5, 2, 0), (1.0, 2, 1), (2.0, 2, 3), (2.25, 2, 4), (0.3, 2, 0),
    (0.1 * 3, 10, 2),  # 3.0000000000000004 ticks: float noise must not move it to frame 3
])
def test_frame_of_names_the_frame_that_ends_at_or_contains_the_time(time: float, fps: float, frame: int) -> None:
    assert frame_of(time, fps) == frame


def test_time_tags_are_reference_tags_at_1_fps_and_true_seconds_at_2_fps() -> None:
    assert [time_tag(i, 1.0) for i in (0, 1, 75)] == ["<0s-1s>", "<1s-2s>", "<75s-76s>"]
    assert [time_tag(i, 2.0) for i in (0, 1, 4)] == ["<0s-0.5s>", "<0.5s-1s>", "<2s-2.5s>"]


def test_span_is_standby_from_its_start_frame_and_answers_on_the_frame_after_its_end() -> None:
    # The reference's own example: span 5..6 s -> standby <4s-5s>, <5s-6s>; answer on <6s-7s>.
    result = align([q("What event?", 5)], [span("A red carpet.", 5.0, 6.0)], num_frames=10)
    assert result.states == [S, S, S, S, B, B, R, S, S, S]
    assert result.answers[6] == "A red carpet." and result.answers.count("") == 9
    assert result.question_frames == {4: "What event?"}
    assert result.issues == []


def test_instant_response_answers_on_the_frame_ending_at_its_time() -> None:
    result = align([q("Tell me when", 0)], [instant("Now.", 8)], num_frames=10)
    assert result.states == [S] * 7 + [R] + [S] * 2


def test_event_at_time_zero() -> None:
    result = align([q("go", 0)], [span("from the start", 0, 3), instant("at once", 0)], num_frames=6)
    # span 0..3: frames 0..2 standby, answer on frame 3; instant at 0 answers on frame 0 (overwriting standby)
    assert result.states == [R, B, B, R, S, S]
    assert result.issues == []


def test_event_ending_past_the_last_frame_is_an_issue_and_its_standby_is_clipped() -> None:
    result = align([q("go", 0)], [span("too late", 2, 5)], num_frames=5)
    assert result.states == [S, B, B, B, B]
    assert R not in result.states
    assert len(result.issues) == 1 and "past the last frame 4" in result.issues[0]


def test_two_responses_on_one_frame_loses_the_first_and_says_so() -> None:
    result = align([q("go", 0)], [instant("first", 3), span("second", 1, 2)], num_frames=6)
    assert result.states == [B, B, R, S, S, S] and result.answers[2] == "second"
    assert len(result.issues) == 1
    assert "response 0" in result.issues[0] and "answered by response 1 on the same frame" in result.issues[0]


def test_later_standby_covering_an_earlier_answer_is_an_issue() -> None:
    result = align([q("go", 0)], [span("A", 2, 6), span("B", 4, 9)], num_frames=12)
    assert result.states == [S] + [B] * 8 + [R, S, S]
    assert any("response 0" in issue and "covered by a later standby" in issue for issue in result.issues)


def test_lossless_order_keeps_every_answer_of_overlapping_spans() -> None:
    responses = [span("A", 2, 6), span("B", 4, 9)]
    ordered = [responses[i] for i in lossless_order(responses, 1.0)]
    result = align([q("go", 0)], ordered, num_frames=12)
    assert result.issues == []
    assert result.states == [S, B, B, B, B, B, R, B, B, R, S, S]
    assert (result.answers[6], result.answers[9]) == ("A", "B")


def test_query_asked_after_its_evidence_follows_the_reference() -> None:
    # Evidence 2..4 s is answered on frame 4; the question is shown on frame 8. The reference keeps it
    # (its renderer also shows the first question on frame 0); alignment itself raises no issue.
    result = align([q("What happened earlier?", 9)], [span("It fell.", 2, 4)], num_frames=12)
    assert result.question_frames == {8: "What happened earlier?"}
    assert result.states[4] == R and result.issues == []


def test_fractional_times_at_1_fps() -> None:
    result = align([q("go", 0.4)], [span("half", 2.5, 4.2)], num_frames=8)
    # 2.5 lies in (2, 3] -> frame 2; 4.2 lies in (4, 5] -> frame 4; answer on frame 5.
    assert result.states == [S, S, B, B, B, R, S, S]
    assert result.question_frames == {0: "go"}


def test_two_fps_grid() -> None:
    result = align([q("go", 0)], [span("A", 1.0, 2.0), instant("B", 4.5)], num_frames=10, fps=2.0)
    # at 2 fps: 1.0 s -> frame 1, 2.0 s -> frame 3, answer on frame 4; 4.5 s -> frame 8
    assert result.states == [S, B, B, B, R, S, S, S, R, S]
    assert answer_frame(span("A", 1.0, 2.0), 2.0) == 4


def test_question_past_the_last_frame_is_an_issue() -> None:
    result = align([q("late", 30)], [instant("x", 1)], num_frames=5)
    assert result.question_frames == {} and "question 0" in result.issues[0]
