"""Task builders turn events into valid samples whose timing is the events' timing."""

from __future__ import annotations

from streamo_data.align import State
from streamo_data.schema import Event, EventKind, StreamingSample, VideoRecord, VideoStatus
from streamo_data.tasks import DenseCaptioning, TemporalGrounding, task_rng

VIDEO = VideoRecord(video_id="clip-1", path="clips/clip.mp4", status=VideoStatus.OK, duration_s=20.0, native_fps=10,
                    num_native_frames=200, width=64, height=48, sample_fps=1.0, num_frames=20)


def event(start: float, end: float, text: str, kind: EventKind = EventKind.CAPTION) -> Event:
    return Event.create(video_id=VIDEO.video_id, duration_s=20.0, start_s=start, end_s=end, text=text, kind=kind,
                        source="test")


def test_grounding_one_sample_per_event_answering_after_its_end() -> None:
    events = [event(2, 5, "A red circle rolls."), event(8, 11.5, "A blue square jumps.")]
    samples, rejects = TemporalGrounding().build(VIDEO, events, task_rng(0, VIDEO.video_id, "temporal_grounding"))
    assert not rejects and len(samples) == 2
    first, second = samples
    assert "A red circle rolls" in first.questions[0].content
    assert first.states.index(State.RESPONSE) == 5 and first.states[1:5] == [State.STANDBY] * 4
    assert "2s" in first.answers[5] and "5s" in first.answers[5]
    assert second.states.index(State.RESPONSE) == 12 and "11.5s" in second.answers[12]


def test_grounding_rejects_ambiguous_and_unanswerable_events_with_reasons() -> None:
    events = [event(1, 2, "Same."), event(4, 5, "Same."), event(15, 20, "Ends with the video.")]
    samples, rejects = TemporalGrounding().build(VIDEO, events, task_rng(0, VIDEO.video_id, "temporal_grounding"))
    assert samples == []
    assert sorted(r.reason.split(":")[0] for r in rejects) == ["ambiguous query", "ambiguous query",
                                                              "event ends on the last frame"]


def test_dense_captioning_keeps_every_overlapping_event() -> None:
    events = [event(2, 6, "A"), event(4, 9, "B"), event(12, 14, "C"), event(13, 14, "D")]
    samples, rejects = DenseCaptioning().build(VIDEO, events, task_rng(0, VIDEO.video_id, "dense_captioning"))
    assert not rejects and len(samples) == 1
    sample = samples[0]
    said = {i: a for i, a in enumerate(sample.answers) if a}
    # A answers on frame 6 inside B's standby; C and D end together, so they share frame 14.
    assert said == {6: "A", 9: "B", 14: "C D"}
    StreamingSample.model_validate(sample.model_dump())


def test_non_caption_events_are_not_captioned_and_builders_are_deterministic() -> None:
    events = [event(2, 6, "A"), Event.create(video_id=VIDEO.video_id, duration_s=20, start_s=1, end_s=3, text="Q?",
                                             kind=EventKind.QA, source="t", answer="yes")]
    one, _ = DenseCaptioning().build(VIDEO, events, task_rng(5, VIDEO.video_id, "dense_captioning"))
    two, _ = DenseCaptioning().build(VIDEO, events, task_rng(5, VIDEO.video_id, "dense_captioning"))
    assert one == two and [r.content for r in one[0].responses] == ["A"]


def test_each_task_owns_at_least_ten_templates() -> None:
    for builder in (TemporalGrounding, DenseCaptioning):
        assert len(set(builder.templates)) >= 10
