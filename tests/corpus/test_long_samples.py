"""A video claimed to be days long (an annotation's ``"duration": 1e8``) costs memory per sampled frame in
every stage, so one maximum (``schema.MAX_VIDEO_DURATION_S``, 12 h) bounds them: build rejects its events
with a counted reason and keeps the other videos' samples, a sample past it does not validate, and
``show`` draws at most what a picture holds and says what it leaves out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import pytest
from pydantic import ValidationError

import streamo_data.plots.timeline as timeline
from streamo_data.core.schema import (
    MAX_VIDEO_DURATION_S,
    METADATA_BACKEND,
    Event,
    EventKind,
    QuestionTurn,
    ResponseTurn,
    StreamingSample,
    VideoRecord,
    VideoStatus,
    max_sampled_frames,
)
from streamo_data.corpus.tasks import BUILDERS, build_all
from streamo_data.plots.show import draw
from streamo_data.plots.timeline import Layout, drawn, render_html, render_png
from streamo_data.runtime.runner import Executor
from streamo_data.stages.build import run_build
from streamo_data.store.tables import iter_rows, to_row, write_rows
from streamo_data.store.workdir import EVENTS, REJECTS, SAMPLES, VIDEOS

TOO_LONG = 10 * MAX_VIDEO_DURATION_S  # far enough past the maximum, cheap enough for today's code to try


def metadata_video(name: str, duration_s: float) -> VideoRecord:
    """A video known from its annotations only, as the recipes make them: ``floor(duration * fps)`` frames."""
    return VideoRecord(video_id=f"{name}-1", path=f"{name}.mp4", status=VideoStatus.OK, duration_s=duration_s,
                       sample_fps=1.0, num_frames=int(duration_s), backend=METADATA_BACKEND)


def test_build_rejects_an_over_long_video_with_a_reason_and_keeps_the_others(tmp_path: Path) -> None:
    """A work directory written before the recipes checked durations (or by any other tool) may hold one."""
    work = tmp_path / "work"
    videos = [metadata_video("long", TOO_LONG), metadata_video("short", 10.0)]
    events = [Event.create(video_id=v.video_id, duration_s=v.duration_s, start_s=1, end_s=2, text=text,
                           kind=EventKind.CAPTION, source="generic")
              for v, text in zip(videos, ["a dog jumps", "a cat sits"], strict=True)]
    write_rows(work / VIDEOS, VideoRecord, [to_row(v) for v in videos])
    write_rows(work / EVENTS, Event, [to_row(e) for e in events])
    started = time.monotonic()
    summary = run_build(work, ["temporal_grounding", "dense_captioning"], 0, Executor(kind="local"))
    assert time.monotonic() - started < 20
    samples = list(iter_rows(work / SAMPLES))
    assert {s["video_path"] for s in samples} == {"short.mp4"}
    assert {s["task"] for s in samples} == {"temporal_grounding", "dense_captioning"}
    rejects = [json.loads(line) for line in (work / REJECTS).read_text().splitlines()]
    assert {(r["task"], r["video_id"]) for r in rejects} == {
        ("temporal_grounding", videos[0].video_id), ("dense_captioning", videos[0].video_id)}
    assert all("past the maximum of 43200 s (12 h)" in r["reason"] for r in rejects)
    assert sum(summary.not_built.values()) == 2


@pytest.mark.parametrize("duration", [TOO_LONG, 1e12])
def test_every_builder_rejects_each_event_of_an_over_long_video_before_any_per_frame_work(duration: float) -> None:
    video = metadata_video("long", duration)
    events = [Event.create(video_id=video.video_id, duration_s=duration, start_s=1, end_s=2, text=text, kind=kind,
                           source="test", answer="yes" if kind is EventKind.QA else None)
              for text, kind in [("a dog jumps", EventKind.CAPTION), ("is it a dog?", EventKind.QA),
                                 ("cut the onion", EventKind.STEP), ("he says hi", EventKind.NARRATION)]]
    started = time.monotonic()
    for name, builder in BUILDERS.items():
        samples, rejects = build_all(builder(), video, events, 0)
        assert samples == [], name
        assert len(rejects) == sum(e.kind in builder.kinds for e in events), name
        assert all("past the maximum" in r.reason for r in rejects), name
    assert time.monotonic() - started < 5


def test_a_video_at_the_maximum_still_builds() -> None:
    video = metadata_video("long", MAX_VIDEO_DURATION_S)
    event = Event.create(video_id=video.video_id, duration_s=MAX_VIDEO_DURATION_S, start_s=1, end_s=2,
                         text="a dog jumps", kind=EventKind.CAPTION, source="test")
    samples, rejects = build_all(BUILDERS["temporal_grounding"](), video, [event], 0)
    assert len(samples) == 1 and not rejects and samples[0].num_frames == 43200


def sample(duration_s: float, num_frames: int, answers: int = 2) -> StreamingSample:
    return StreamingSample.create(
        task="dense_captioning", source="generic", video_id="long-1", video_path="long.mp4", duration_s=duration_s,
        fps=1.0, num_frames=num_frames, questions=[QuestionTurn(content="Describe each event.", time=0)],
        responses=[ResponseTurn(content=f"event {k}", st_time=6 * k + 1, end_time=6 * k + 3) for k in range(answers)])


def test_a_sample_past_the_maximum_does_not_validate() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 43200"):
        sample(TOO_LONG, 100)
    frames = max_sampled_frames(1.0) + 1
    with pytest.raises(ValidationError, match=f"video has {frames} sampled frames, more than"):
        sample(MAX_VIDEO_DURATION_S, frames)


def test_show_draws_the_first_frames_of_a_long_sample_and_says_what_it_leaves_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "MAX_DRAWN_FRAMES", 60)
    monkeypatch.setattr(timeline, "MAX_TEXT_LINES", 5)
    long = sample(200.0, 200, answers=30)
    layout, turns, lines = drawn(long)
    assert layout.num_frames == 60 and all(turn.frame < 60 for turn in turns)
    assert len(lines) == 5 and lines[-1].startswith("… frames 60–199 (60 s–200 s) not drawn, 27 more turns")
    png = tmp_path / "t.png"
    assert render_png(long, png) == layout
    assert cv2.imread(str(png)).shape[:2] == (layout.height(len(lines)), layout.width)
    page = tmp_path / "t.html"
    render_html(long, page)
    assert page.read_text().count('class="bar"') == 60 and "60 s–200 s) not drawn" in page.read_text()
    assert "the first 60 of 200 frames" in draw(long, tmp_path / "d.html", None)


def test_show_of_a_twelve_hour_sample_is_a_page_of_bounded_size(tmp_path: Path) -> None:
    long = sample(MAX_VIDEO_DURATION_S, 43200, answers=500)
    page = tmp_path / "t.html"
    note = draw(long, page, None)
    assert note.endswith(f"the first {timeline.MAX_DRAWN_FRAMES} of 43200 frames")
    assert page.stat().st_size < 2_000_000
    assert Layout(timeline.drawn_frames(long)).rows == timeline.MAX_DRAWN_FRAMES // timeline.COLUMNS


def test_show_of_a_short_sample_is_unchanged() -> None:
    short = sample(45.0, 45)
    layout, turns, lines = drawn(short)
    assert layout == Layout(45) and len(turns) == 3 and not any(line.startswith("…") for line in lines)
