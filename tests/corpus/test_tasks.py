"""Task builders turn events into valid samples whose timing is the events' timing."""

from __future__ import annotations

import pytest

from streamo_data.core.align import State
from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord, VideoStatus
from streamo_data.corpus.tasks import (
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
    assert not rejects and len(samples) == 2
    door = next(s for s in samples if "door" in s.questions[0].content)
    assert sorted(said(door)) == [2, 6]


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


# ---- the last-frame rule: an event ending with the video is answered on the last frame --------------------

def test_an_event_ending_on_the_last_frame_is_answered_there_by_every_task() -> None:
    last = VIDEO.num_frames - 1  # 19: covers (19 s, 20 s]
    steps = [event(3, 8, "Crack the eggs.", EventKind.STEP), event(15, 20, "Serve the omelette.", EventKind.STEP)]
    qa = [event(2, 6, "What is on the plate?", EventKind.QA, answer="Nothing."),
          event(16, 20, "What is on the plate?", EventKind.QA, answer="An omelette.")]
    for builder in (ActionCaptioning(), TemporalGrounding(), OfflineQA()):
        samples, rejects = build_all(builder, VIDEO, steps + qa, seed=0)
        assert not rejects, (builder.name, rejects)
        assert any(s.states[last] is State.RESPONSE for s in samples), builder.name
    # narration and "what now?" speak soon after an event starts: one ending with the video is kept
    captions = [event(3, 8, "A man walks in."), event(15, 20, "He waves goodbye."), event(19.2, 20, "Lights off.")]
    (narration,), rejects = build_all(Narration(), VIDEO, captions, seed=0)
    assert not rejects and said(narration) == {3: "A man walks in.", 15: "He waves goodbye.", last: "Lights off."}
    (now,), rejects = build_all(TimeSensitiveQA(), VIDEO, steps, seed=0)
    assert not rejects and sorted(said(now)) == [4, 16]
    (captions,), _ = build_all(ActionCaptioning(), VIDEO, steps, seed=0)
    assert said(captions) == {8: "Crack the eggs.", last: "Serve the omelette."}
    # no silence over an event a sample was built from: 15-20 s is frames 14..19
    assert captions.states[14:last] == [State.STANDBY] * 5
    # the raw record says exactly that, so the reference converter renders the same labels
    moved = captions.responses[0]
    assert (moved.st_time, moved.end_time) == (15.0, 19.0)


def test_events_ending_with_the_video_are_all_answered_and_those_never_shown_are_rejected() -> None:
    video = VIDEO.model_copy(update={"duration_s": 20.6})  # a tail after the last sampled frame
    tail = [Event.create(video_id=VIDEO.video_id, duration_s=20.6, start_s=start, end_s=20.6, text=text,
                         kind=EventKind.CAPTION, source="test")
            for start, text in ((18.5, "Runs past the last frame."), (20.2, "Only in the tail."))]
    (sample,), rejects = build_all(DenseCaptioning(), video, tail, seed=0)
    assert said(sample) == {19: "Runs past the last frame."}
    assert sample.states[18] is State.STANDBY
    assert [r.reason for r in rejects] == [
        "evidence starts after the last sampled frame: the stream never shows it"]


def test_a_span_starting_on_the_last_frame_becomes_an_instant_answer_there() -> None:
    (sample,), rejects = build_all(DenseCaptioning(), VIDEO, [event(19.5, 20, "A flash.")], seed=0)
    assert not rejects and said(sample) == {19: "A flash."}
    assert sample.responses[0].time == 20.0 and sample.responses[0].st_time is None


def test_the_last_frame_rule_at_two_fps() -> None:
    video = VIDEO.model_copy(update={"sample_fps": 2.0, "num_frames": 40})
    (sample,), rejects = build_all(DenseCaptioning(), video, [event(17, 20, "The end.")], seed=0)
    # 17 s is frame 33; the evidence reaches the last frame (39), which answers; 33..38 stand by
    assert not rejects and said(sample) == {39: "The end."}
    assert sample.states[33:39] == [State.STANDBY] * 6 and sample.states[32] is State.SILENCE


# ---- paraphrases, repeats, contradictions, duplicates ------------------------------------------------------

def moment_events(*spec: tuple[float, float, str, str | None], kind: EventKind = EventKind.ACTION) -> list[Event]:
    return [event(a, b, text, kind).model_copy(update={"moment": moment}) for a, b, text, moment in spec]


CHARADES = moment_events((1, 5, "person runs away.", "m1"), (1, 5, "person runs out of the room.", "m1"),
                         (7, 12, "person opens a door.", "m2"), (7.4, 12, "a person opens the door.", "m2"))


def test_paraphrases_of_one_moment_are_told_once() -> None:
    (tsqa,), _ = build_all(TimeSensitiveQA(), VIDEO, CHARADES, seed=0)
    assert len(said(tsqa)) == 2  # one answer per moment, never "Now: runs away. Now: runs out of the room."
    (captions,), _ = build_all(ActionCaptioning(), VIDEO, CHARADES, seed=0)
    assert len(said(captions)) == 2 and all(" " not in a or "." in a for a in said(captions).values())
    offline, _ = build_all(OfflineQA(), VIDEO, CHARADES, seed=0)
    assert len(offline) == 1  # "after m1?" -> m2; never "after 'runs away'?" -> "runs out of the room"
    question, answer = offline[0].questions[0].content, next(iter(said(offline[0]).values()))
    assert "run" in question and "open" in answer
    captions = [e.model_copy(update={"kind": EventKind.CAPTION}) for e in CHARADES]  # DiDeMo's kind
    (narration,), _ = build_all(Narration(), VIDEO, captions, seed=0)
    assert len(said(narration)) == 2


def test_templates_speak_of_steps_and_how_to_videos_only_for_steps() -> None:
    for seed in range(40):
        for builder in (ActionCaptioning(), TimeSensitiveQA()):
            for sample in build_all(builder, VIDEO, CHARADES, seed=seed)[0]:
                text = sample.questions[0].content.lower()
                assert "how-to" not in text and "step" not in text and "procedure" not in text


def test_time_sensitive_qa_never_repeats_an_answer_in_a_row() -> None:
    coin = [event(1, 3, "pour water", EventKind.STEP), event(4, 6, "pour water", EventKind.STEP),
            event(7, 9, "stir", EventKind.STEP), event(10, 12, "pour water.", EventKind.STEP)]
    (sample,), _ = build_all(TimeSensitiveQA(), VIDEO, coin, seed=0)
    texts = [a for _, a in sorted(said(sample).items())]
    assert len(texts) == 3 and all(t != u for t, u in zip(texts, texts[1:], strict=False))
    qa = [event(2, 4, "How many cups?", EventKind.QA, answer="Two."),
          event(6, 8, "How many cups?", EventKind.QA, answer="Two"),
          event(9, 11, "How many cups?", EventKind.QA, answer="Three.")]
    (sample,), _ = build_all(TimeSensitiveQA(), VIDEO, qa, seed=0)
    assert said(sample) == {4: "Two.", 11: "Three."}


def test_offline_qa_asks_one_question_once_per_video() -> None:
    qa = [event(2, 4, "Is the light on?", EventKind.QA, answer="Yes."),
          event(9, 11, "Is the light on?", EventKind.QA, answer="Yes.")]
    samples, _ = build_all(OfflineQA(), VIDEO, qa, seed=0)
    assert len(samples) == 1 and said(samples[0]) == {4: "Yes.", 11: "Yes."}
    steps = [event(1, 2, "pour water", EventKind.STEP), event(3, 4, "stir", EventKind.STEP),
             event(5, 6, "pour water", EventKind.STEP), event(7, 8, "taste", EventKind.STEP)]
    samples, _ = build_all(OfflineQA(), VIDEO, steps, seed=0)
    after_pour = [s for s in samples if "pour water" in s.questions[0].content]
    assert len(after_pour) == 1 and said(after_pour[0]) == {4: "stir", 8: "taste"}


def test_two_spellings_of_one_query_are_one_candidate() -> None:
    events = [event(2, 4, "light goes out"), event(2, 4, "Light goes out.")]
    candidates = TemporalGrounding().candidates(VIDEO, events)
    assert len(candidates) == 1
    samples, _ = build_all(TemporalGrounding(), VIDEO, events, seed=0)
    assert len({s.sample_id for s in samples}) == len(samples) == 1
