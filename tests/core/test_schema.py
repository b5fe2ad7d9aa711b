"""Each invariant of the data model is enforced, with a message that says which item and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from streamo_data.core.align import State
from streamo_data.core.schema import (
    Event,
    EventKind,
    QuestionTurn,
    ResponseTurn,
    StreamingSample,
    VideoRecord,
    VideoStatus,
)
from streamo_data.store.schema_export import rendered_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def good_sample(**overrides: Any) -> dict[str, Any]:
    sample = StreamingSample.create(
        task="temporal_grounding", source="test", video_id="v-1", video_path="a/v.mp4", duration_s=10.0,
        fps=1.0, num_frames=10, questions=[QuestionTurn(content="When?", time=0)],
        responses=[ResponseTurn(content="From 2s to 4s.", st_time=2, end_time=4)],
    )
    return {**sample.model_dump(), **overrides}


def rejects(model: type, data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert fragment in str(caught.value), str(caught.value)


def test_a_created_sample_is_valid_and_states_come_from_the_rule() -> None:
    sample = StreamingSample.model_validate(good_sample())
    assert sample.states == [State.SILENCE] + [State.STANDBY] * 3 + [State.RESPONSE] + [State.SILENCE] * 5
    assert sample.answers[4] == "From 2s to 4s."
    assert sample.to_raw()["response"] == [{"content": "From 2s to 4s.", "st_time": 2.0, "end_time": 4.0}]


def test_times_within_the_video() -> None:
    data = good_sample()
    data["responses"] = [{"content": "late", "time": 14.0}]
    rejects(StreamingSample, data, "response 'late' at 14.0s is past the video's end (10.0s)")
    data = good_sample()
    data["questions"] = [{"content": "late q", "time": 11.0}]
    rejects(StreamingSample, data, "question at 11.0s is past the video's end")


def test_start_not_after_end() -> None:
    rejects(ResponseTurn, {"content": "x", "st_time": 5, "end_time": 3}, "st_time 5.0s is after end_time 3.0s")
    rejects(Event, {"event_id": "e1", "video_id": "v", "duration_s": 10, "start_s": 6, "end_s": 2, "text": "t",
                    "kind": "caption", "source": "s"}, "event e1: start 6.0s is after end 2.0s")


def test_event_within_its_video() -> None:
    rejects(Event, {"event_id": "e1", "video_id": "v", "duration_s": 10, "start_s": 6, "end_s": 12, "text": "t",
                    "kind": "caption", "source": "s"}, "event e1: end 12.0s is past the video's duration 10.0s")
    event = Event.create(video_id="v", duration_s=10, start_s=1, end_s=2, text="t", kind=EventKind.QA,
                         source="s", answer="yes")
    assert event.event_id == Event.create(video_id="v", duration_s=10, start_s=1, end_s=2, text="t",
                                          kind=EventKind.QA, source="s", answer="yes").event_id


def test_negative_and_missing_times() -> None:
    rejects(QuestionTurn, {"content": "q", "time": -1}, "greater than or equal to 0")
    rejects(ResponseTurn, {"content": "x"}, "needs a span (st_time, end_time) or a time")
    rejects(ResponseTurn, {"content": "x", "st_time": 1}, "a span needs both st_time and end_time")
    rejects(ResponseTurn, {"content": "", "time": 1}, "at least 1 character")


def test_one_label_per_frame() -> None:
    data = good_sample()
    data["states"] = data["states"][:-1]
    rejects(StreamingSample, data, "9 states and 10 answers for 10 frames; there must be exactly one label per frame")


def test_states_consistent_with_the_turns() -> None:
    data = good_sample()
    data["states"] = [State.SILENCE] * 10
    rejects(StreamingSample, data, "states/answers disagree with its questions and responses")
    data = good_sample()
    data["answers"] = ["" for _ in range(10)]
    rejects(StreamingSample, data, "states/answers disagree")


def test_a_lost_answer_is_invalid() -> None:
    data = good_sample()
    data["responses"] = [{"content": "A", "st_time": 2, "end_time": 6}, {"content": "B", "st_time": 4, "end_time": 8}]
    rejects(StreamingSample, data, "response 0 ('A') on frame 6 is lost: covered by a later standby")


def test_sample_id_is_the_content_hash() -> None:
    rejects(StreamingSample, good_sample(sample_id="forged"), "sample_id is not the hash of its content")


def test_unknown_fields_and_bad_states_are_rejected() -> None:
    rejects(StreamingSample, good_sample(extra="x"), "Extra inputs are not permitted")
    data = good_sample()
    data["states"] = ["talking"] + data["states"][1:]
    rejects(StreamingSample, data, "Input should be 'silence', 'standby' or 'response'")


def test_video_record_status_matches_fields() -> None:
    rejects(VideoRecord, {"video_id": "v", "path": "v.mp4", "status": "error"},
            "video v.mp4: an error row must say why")
    rejects(VideoRecord, {"video_id": "v", "path": "v.mp4", "status": "ok"}, "status ok but duration_s")
    ok = VideoRecord(video_id="v", path="v.mp4", status=VideoStatus.OK, duration_s=2, native_fps=10,
                     num_native_frames=20, width=4, height=4, sample_fps=1, num_frames=2, frame_indices=[9, 19])
    rejects(VideoRecord, {**ok.model_dump(), "frame_indices": [9, 25]}, "a frame index lies outside the video")


def test_exported_json_schemas_are_up_to_date() -> None:
    expected = rendered_schemas()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.schema.json")}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, f"run `streamo schemas --out schemas` (stale: {stale}, extra: {extra})"
