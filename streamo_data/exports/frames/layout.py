"""Where a video's frames go, and how a finished folder is known.

Both layouts hold ``frame_000000.<ext>``, ``frame_000001.<ext>``, ... and the reference's ``.done`` marker
(``frames=``, ``video_fps=``, ``extraction_fps=``, written last). The reference trainer checks only that
the marker exists and then lists the folder's ``.png``/``.jpg``/``.jpeg`` files, so a folder here must
never carry a marker before every frame is in it: a folder is built under ``.partial/`` and renamed into
place whole. ``frames.json`` beside the frames records what they are (settings, native indices), so a
rerun can tell a finished folder of this export from one made with other settings.

Only what a frame export makes is ever replaced or removed: a folder (or ``.partial/`` entry) holding
nothing but frame files, ``.done`` and ``frames.json``. A file, a link, or a folder with anything else in
it at a frame folder's place is the user's: it is refused and left as it is, even with ``--replace``.

* reference layout: ``<out>/<stem>_frames/``, the stem being the video file's name without extension,
  exactly where the reference preprocessor looks. Two videos with one stem (``a/x.mp4``, ``b/x.mp4``)
  collide there; the reference would show one video's frames for the other.
* our layout: ``<out>/<video_id>/`` (``<video_id>@<fps>fps/`` at another rate than 1 fps): one folder per
  video, whatever its name.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from streamo_data.core.errors import UserError

DONE = ".done"
SIDECAR = "frames.json"
PARTIAL = ".partial"
LOCK = ".streamo-frames.lock"  # held by the one export writing into a frames folder
FRAME_NAME = re.compile(r"frame_\d{6}\.(?:png|jpg|jpeg)")  # as this exporter and the reference name frames
PARTIAL_NAME = re.compile(r".+\.[0-9a-f]{12}(?:\.old)?")  # new_partial's folders, and publish's set-aside ones
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

    kind: str  # "missing" | "done" | "incomplete" | "other" | "foreign" (not frames: never replaced)
    images: tuple[str, ...] = ()
    record: FolderRecord | None = None
    reason: str = ""


def is_frame_entry(name: str) -> bool:
    """A name a frame folder holds: a frame file, the marker or the sidecar."""
    return name in (DONE, SIDECAR) or FRAME_NAME.fullmatch(name) is not None


def stranger_in(folder: Path) -> str:
    """Why what is at ``folder`` is not a frame folder that may be replaced ('' when it is one): anything
    but plain frame files, marker and sidecar may be the user's own work."""
    if folder.is_symlink():
        return "is a symbolic link, not a frame folder"
    if not folder.is_dir():
        return "is a file, not a frame folder"
    with os.scandir(folder) as entries:
        strangers = sorted(e.name for e in entries if not (e.is_file(follow_symlinks=False)
                                                           and is_frame_entry(e.name)))
    if strangers:
        more = f" (and {len(strangers) - 1} more)" if len(strangers) > 1 else ""
        return f"holds {strangers[0]}{more}, which no frame export makes"
    return ""


def inspect_folder(folder: Path, settings: FrameSettings, video: str, video_bytes: int) -> FolderState:
    """What is at a frame folder's place; a state that would be replaced ("incomplete", "other") becomes
    "foreign" when anything there is not frame-folder content, so that nothing of the user's is deleted."""
    if not os.path.lexists(folder):
        return FolderState("missing")
    state = _inspect(folder, settings, video, video_bytes)
    if state.kind in ("incomplete", "other"):
        stranger = stranger_in(folder)
        if stranger:
            return FolderState("foreign", reason=stranger)
    return state


def _inspect(folder: Path, settings: FrameSettings, video: str, video_bytes: int) -> FolderState:
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


def remove_frame_folder(folder: Path) -> bool:
    """Delete a frame folder's own files and then the folder; anything else in it (put there meanwhile)
    is kept, and so is the folder. Returns whether the folder is gone."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and is_frame_entry(entry.name):
                os.unlink(entry.path)
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def publish(partial: Path, final: Path) -> None:
    """Put a finished folder in place in one rename; what was there (an incomplete frame folder, or one
    the caller chose to replace: never anything else, see :func:`inspect_folder`) is moved aside first
    and its frame files removed after."""
    aside = None
    if os.path.lexists(final):
        aside = partial.with_name(partial.name + ".old")
        os.rename(final, aside)
    os.rename(partial, final)
    if aside is not None:
        remove_frame_folder(aside)


def check_partials(out_dir: Path) -> None:
    """``.partial`` must be a real folder for this exporter to build in: a file or a link there is the
    user's, and refused before any video starts."""
    root = out_dir / PARTIAL
    if os.path.lexists(root) and (root.is_symlink() or not root.is_dir()):
        raise UserError(f"{root}: is not a folder this exporter made (it builds frame folders there); move it away")


def clear_partials(out_dir: Path) -> int:
    """Remove what killed runs left half-built (folders named and filled as :func:`new_partial` makes
    them); anything else under ``.partial`` is the user's and kept. Returns how many folders."""
    check_partials(out_dir)
    root = out_dir / PARTIAL
    if not root.exists():
        return 0
    count = 0
    with os.scandir(root) as entries:
        ours = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and PARTIAL_NAME.fullmatch(e.name)]
    for folder in sorted(ours):
        if not stranger_in(folder):
            count += remove_frame_folder(folder)
    with contextlib.suppress(OSError):
        root.rmdir()  # only when empty: what is left is not ours
    return count
