"""Where a video's frames go, and how a finished folder is known.

Both layouts hold ``frame_000000.<ext>``, ``frame_000001.<ext>``, ... and the reference's ``.done`` marker
(``frames=``, ``video_fps=``, ``extraction_fps=``, written last). The reference trainer checks only that
the marker exists and then lists the folder's ``.png``/``.jpg``/``.jpeg`` files, so a folder here must
never carry a marker before every frame is in it: a folder is built under ``.partial/`` and renamed into
place whole. ``frames.json`` beside the frames records what they are (settings, native indices), so a
rerun can tell a finished folder of this export from one made with other settings.

* reference layout: ``<out>/<stem>_frames/``, the stem being the video file's name without extension,
  exactly where the reference preprocessor looks. Two videos with one stem (``a/x.mp4``, ``b/x.mp4``)
  collide there; the reference would show one video's frames for the other.
* our layout: ``<out>/<video_id>/`` (``<video_id>@<fps>fps/`` at another rate than 1 fps): one folder per
  video, whatever its name.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

DONE = ".done"
SIDECAR = "frames.json"
PARTIAL = ".partial"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what the reference lists in a finished folder
EXTENSIONS = {"jpeg": "jpg", "png": "png"}


class FrameSettings(BaseModel):
    """What makes two exports' frames the same: a folder is reused only when all of it matches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timing: str
    fps: float
    format: str
    quality: int | None  # JPEG only
    max_side: int | None


class FolderRecord(BaseModel):
    """``frames.json``: the frames of one folder and where they came from."""

    model_config = ConfigDict(extra="forbid")

    video: str
    video_bytes: int
    settings: FrameSettings
    native_fps: float
    opencv_frame_count: int
    native_indices: list[int]
    drift_s: float
    backend: str


def folder_name(stem_or_id: str, fps: float, reference_layout: bool) -> str:
    if reference_layout:
        return f"{stem_or_id}_frames"
    return stem_or_id if fps == 1 else f"{stem_or_id}@{fps:g}fps"


def frame_file(index: int, extension: str) -> str:
    return f"frame_{index:06d}.{extension}"


def done_text(frames: int, video_fps: float, fps: float) -> str:
    """The reference's marker, byte for byte (Python's float repr of OpenCV's rate and of the fps)."""
    return f"frames={frames}\nvideo_fps={float(video_fps)}\nextraction_fps={float(fps)}\n"


def read_done(folder: Path) -> dict[str, str] | None:
    try:
        text = (folder / DONE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def listed_images(folder: Path) -> list[str]:
    """The frame files the reference would list, in its (sorted) order."""
    return sorted(name for name in os.listdir(folder) if name.endswith(IMAGE_SUFFIXES))


@dataclass(frozen=True)
class FolderState:
    """What is at a frame folder's place: nothing, a finished folder (of these settings, or reusable
    reference frames), or something else that must not be silently replaced."""

    kind: str  # "missing" | "done" | "incomplete" | "other"
    images: tuple[str, ...] = ()
    record: FolderRecord | None = None
    reason: str = ""


def inspect_folder(folder: Path, settings: FrameSettings, video: str, video_bytes: int) -> FolderState:
    if not folder.exists():
        return FolderState("missing")
    marker = read_done(folder)
    if marker is None:
        return FolderState("incomplete", reason="no .done marker (an interrupted extraction)")
    images = tuple(listed_images(folder))
    try:
        expected = int(marker.get("frames", "-1"))
    except ValueError:
        expected = -1
    if expected != len(images) or not images:
        return FolderState("incomplete", reason=f".done says {marker.get('frames')} frames, {len(images)} there")
    sidecar = folder / SIDECAR
    if not sidecar.exists():
        # A folder the reference trainer made itself: its frames are the reference pick at its fps.
        if settings.timing == "reference" and _same_fps(marker.get("extraction_fps"), settings.fps):
            return FolderState("done", images)
        made_at = marker.get("extraction_fps")
        return FolderState("other", images, reason=f"frames made elsewhere (extraction_fps={made_at})")
    try:
        record = FolderRecord.model_validate_json(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValidationError, UnicodeDecodeError) as error:
        return FolderState("incomplete", reason=f"unreadable {SIDECAR}: {str(error).splitlines()[0]}")
    if record.settings != settings:
        other = _describe(record.settings)
        return FolderState("other", images, record, reason=f"frames made with other settings ({other})")
    if (record.video, record.video_bytes) != (video, video_bytes):
        return FolderState("other", images, record, reason=f"frames of another video ({record.video})")
    if len(record.native_indices) != len(images):
        listed = len(record.native_indices)
        return FolderState("incomplete", reason=f"{SIDECAR} lists {listed} frames, {len(images)} there")
    return FolderState("done", images, record)


def _same_fps(text: str | None, fps: float) -> bool:
    try:
        return text is not None and float(text) == float(fps)
    except ValueError:
        return False


def _describe(settings: FrameSettings) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.model_dump().items() if v is not None)


def new_partial(out_dir: Path, name: str) -> Path:
    """A private folder to build ``name`` in, beside its final place (same filesystem: rename is atomic)."""
    folder = out_dir / PARTIAL / f"{name}.{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    return folder


def publish(partial: Path, final: Path) -> None:
    """Put a finished folder in place in one rename; what was there (an incomplete folder, or one the
    caller chose to replace) is moved aside first and removed after."""
    aside = None
    if final.exists():
        aside = partial.with_name(partial.name + ".old")
        os.rename(final, aside)
    os.rename(partial, final)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def clear_partials(out_dir: Path) -> int:
    """Remove what killed runs left half-built; returns how many folders."""
    root = out_dir / PARTIAL
    if not root.exists():
        return 0
    count = sum(1 for _ in root.iterdir())
    shutil.rmtree(root, ignore_errors=True)
    return count
