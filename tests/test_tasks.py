"""Task builders turn events into valid samples whose timing is the events' timing."""

from __future__ import annotations

import pytest

from streamo_data.align import State
from streamo_data.schema import Event, EventKind, StreamingSample, VideoRecord, VideoStatus
from streamo_data.tasks import (
    BUILDERS,
    ActionCaptioning,
    DenseCaptioning,
    Narration,
    OfflineQA,
    TemporalGrounding,
    TimeSensitiveQA,
    build_all,
)

VIDEO = VideoRecord(video_id="clip-1", path="clips/clip.mp4", status=VideoStatus.OK, duration_s=20.0, native_fps=10,
                    num_native_frames=200, width=64, height=48, sample_fps=1.0, num_frames=20)


def event(start: float, end: float, text: str, kind: EventKind = EventKind.CAPTION, source: str = "test",
          answer: str | None = None) -> Event:
    return Event.create(video_id=VIDEO.video_id, duration_s=20.0, start_s=start, end_s=end, text=text, kind=kind,
                        source=source, answer=answer)


def said(sample: StreamingSample) -> dict[int, str]:
    return {i: a for i, a in enumerate(sample.answers) if a}


def test_grounding_one_sample_per_description_answering_after_its_end() -> None:
    events = [event(2, 5, "A red circle rolls."), event(8, 11.5, "A blue square jumps.")]
    samples, rejects = build_all(TemporalGrounding(), VIDEO, events, seed=0)
    assert not rejects and len(samples) == 2
    first, second = samples
    assert "A red circle rolls" in first.questions[0].content
    assert first.states.index(State.RESPONSE) == 5 and first.states[1:5] == [State.STANDBY] * 4
    assert "2s" in first.answers[5] and "5s" in first.answers[5]
    assert second.states.index(State.RESPONSE) == 12 and "11.5s" in second.answers[12]


def test_grounding_a_repeated_description_answers_at_each_occurrence() -> None:
    events = [event(1, 2, "A door opens.", EventKind.HIGHLIGHT), event(4, 6, "A door opens.", EventKind.HIGHLIGHT),
              event(15, 20, "Ends with the video.", EventKind.HIGHLIGHT)]
    samples, rejects = build_all(TemporalGrounding(), VIDEO, events, seed=0)
    assert len(samples) == 1 and sorted(said(samples[0])) == [2, 6]
    assert [r.reason for r in rejects] == ["event ends on the last frame: no frame is left on which to answer"]


def test_dense_captioning_keeps_every_overlapping_event() -> None:
    events = [event(2, 6, "A"), event(4, 9, "B"), event(12, 14, "C"), event(13, 14, "D")]
    samples, rejects = build_all(DenseCaptioning(), VIDEO, events, seed=0)
    assert not rejects and len(samples) == 1
    # A answers on frame 6 inside B's standby; C and D end together, so they share frame 14.
    assert said(samples[0]) == {6: "A", 9: "B", 14: "C D"}
    StreamingSample.model_validate(samples[0].model_dump())


def test_captioning_does_not_mix_sources_or_kinds() -> None:
    events = [event(2, 6, "cap-a", source="one"), event(7, 9, "cap-b", source="two"),
              event(1, 3, "step-1", EventKind.STEP), event(4, 8, "step-2", EventKind.STEP)]
    dense, _ = build_all(DenseCaptioning(), VIDEO, events, seed=0)
    assert sorted(s.source for s in dense) == ["one", "two"]
    (steps,), _ = build_all(ActionCaptioning(), VIDEO, events, seed=0)
    assert said(steps) == {3: "step-1", 8: "step-2"}


def test_narration_speaks_one_frame_after_each_event_starts() -> None:
    events = [event(2, 6, "A man walks in."), event(7.5, 12, "He sits down."), event(12.2, 12.6, "He nods.")]
    (sample,), rejects = build_all(Narration(), VIDEO, events, seed=0)
    assert not rejects
    # 2 + 1 = 3 s -> frame 2; 7.5 + 1 = 8.5 s -> frame 8; 12.6 (event end caps the lag) -> frame 12
    assert said(sample) == {2: "A man walks in.", 8: "He sits down.", 12: "He nods."}
    assert State.STANDBY not in sample.states
    assert build_all(Narration(), VIDEO, events[:1], seed=0) == ([], [])  # one event is not a commentary


def test_time_sensitive_qa_answers_again_each_time_the_answer_changes() -> None:
    steps = [event(1, 5, "Chop onions.", EventKind.STEP), event(6, 10, "Fry them.", EventKind.STEP)]
    (sample,), _ = build_all(TimeSensitiveQA(), VIDEO, steps, seed=0)
    answers = said(sample)
    assert sorted(answers) == [2, 7] and "Chop onions" in answers[2] and "Fry them" in answers[7]

    qa = [event(2, 4, "How many cups are on the table?", EventKind.QA, answer="Two."),
          event(9, 11, "How many cups are on the table?", EventKind.QA, answer="Three.")]
    (sample,), _ = build_all(TimeSensitiveQA(), VIDEO, qa, seed=0)
    assert sample.questions[0].content == "How many cups are on the table?"
    assert said(sample) == {4: "Two.", 11: "Three."}


def test_offline_qa_answers_once_its_evidence_is_complete() -> None:
    events = [event(3, 7, "Where are the keys?", EventKind.QA, answer="On the table."),
              event(1, 4, "She opens the fridge."), event(5, 9, "She takes out milk.")]
    samples, _ = build_all(OfflineQA(), VIDEO, events, seed=0)
    by_question = {s.questions[0].content: s for s in samples}
    assert said(by_question["Where are the keys?"]) == {7: "On the table."}
    follow_up = next(s for q, s in by_question.items() if "She opens the fridge" in q)
    assert said(follow_up) == {9: "She takes out milk."}
    assert follow_up.states[0] == State.STANDBY  # evidence from 1 s: standby from frame 0


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builders_are_deterministic_and_own_ten_templates(name: str) -> None:
    builder = BUILDERS[name]()
    assert len(set(builder.templates)) >= 10
    events = [event(1, 4, "One.", EventKind.STEP), event(5, 8, "Two.", EventKind.STEP), event(2, 6, "Cap one."),
              event(9, 12, "Cap two."), event(3, 5, "Q?", EventKind.QA, answer="A.")]
    first = build_all(builder, VIDEO, events, seed=3)
    assert first == build_all(builder, VIDEO, events, seed=3)
    assert first[0], f"{name} built nothing"
    for sample in first[0]:
        assert sample.task == name
        StreamingSample.model_validate(sample.model_dump())


def test_candidate_keys_are_unique_across_tasks() -> None:
    events = [event(1, 4, "One.", EventKind.STEP), event(5, 8, "Two.", EventKind.STEP), event(2, 6, "Cap one."),
              event(9, 12, "Cap two.")]
    keys = [c.key for builder in BUILDERS.values() for c in builder().candidates(VIDEO, events)]
    assert len(keys) == len(set(keys))
