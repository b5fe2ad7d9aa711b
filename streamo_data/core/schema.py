"""The data model: every row that a stage writes is one of these, validated on the way in and out.

Invariants live in validators rather than in the stages, so a row read back from disk by any tool
can be re-checked (``streamo validate``) against exactly the rules it was built with.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import posixpath
from enum import StrEnum
from json import encoder as json_encoder
from typing import Annotated, Any, NamedTuple, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator

from streamo_data.core.align import Alignment, State, align

METADATA_BACKEND = "metadata"

# A tolerance for times written with fewer decimals than the probed duration (e.g. 12.0 vs 11.9987).
TIME_TOLERANCE_S = 0.05

# The longest video the corpus takes: 12 hours, far above any real source (feature films, Ego4D's longest
# recordings, a day's lecture) and far below what a crafted file or a typo claims (a last frame at 1e8 s,
# an annotation's "duration": 1e8). Every stage spends memory per sampled frame, so this one number bounds
# them all: ingest makes a longer video an error row, build rejects its events with a counted reason, and a
# sample past it does not validate.
MAX_VIDEO_DURATION_S = 12 * 3600.0


def max_sampled_frames(fps: float) -> int:
    """The most sampled frames a video within :data:`MAX_VIDEO_DURATION_S` can have at ``fps``: twice
    ``duration * fps``, because the reference count samples every ``int(native_fps / fps)``-th native
    frame, which is up to (not quite) twice as often as ``fps`` (25 fps sampled at 10 fps: every 2nd frame)."""
    return math.ceil(2 * MAX_VIDEO_DURATION_S * fps) + 1


def too_long(duration_s: float | None, num_frames: int | None, fps: float | None) -> str | None:
    """Why a video is past the maximum (its duration or its sampled frame count), or None when it is not
    (or when a value is missing or no number: checking those is the fields' job)."""
    try:
        duration, frames, rate = (None if v is None else float(v) for v in (duration_s, num_frames, fps))
    except (TypeError, ValueError):
        return None
    if duration is not None and not duration <= MAX_VIDEO_DURATION_S:
        return (f"video is {duration:g} s long, past the maximum of {MAX_VIDEO_DURATION_S:g} s"
                f" ({MAX_VIDEO_DURATION_S / 3600:g} h) a video may last")
    if frames is not None and rate is not None and rate > 0 and frames > max_sampled_frames(rate):
        return (f"video has {frames:.0f} sampled frames, more than the {max_sampled_frames(rate)} that"
                f" {MAX_VIDEO_DURATION_S / 3600:g} h at {rate:g} fps can have")
    return None


NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
TIME_DECIMALS = 6  # a microsecond: finer than any frame grid, coarse enough to erase float noise


def _canonical_seconds(value: float) -> float:
    """Times are kept to the microsecond, so 0.1 + 0.2 and 0.3 are one time (and one content hash)."""
    return round(float(value), TIME_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False), AfterValidator(_canonical_seconds)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


@functools.lru_cache(maxsize=1 << 16)  # checked for every row that names a video: per video, not per row
def leaves_root(video_path: str) -> bool:
    """Whether a video path names a file outside the folder it is relative to (``/abs/x.mp4``,
    ``../x.mp4``, ``a/../../x.mp4``): every reader joins it to a ``--video-root``, so such a path would have
    it decode, show or export a file the user never pointed it at."""
    return posixpath.isabs(video_path) or posixpath.normpath(video_path).split("/")[0] == ".."


def _inside_the_root(video_path: str) -> str:
    if leaves_root(video_path):
        raise ValueError(f"video path {video_path!r} leaves the video root (absolute, or up with ..):"
                         " a path relative to the videos folder is needed")
    return video_path


# A path relative to the video root, and inside it.
VideoPath = Annotated[str, StringConstraints(min_length=1), AfterValidator(_inside_the_root)]


# One encoder for every id: ``json.dumps`` with options builds a new encoder per call, which was a tenth of
# a build's time (an id per event, candidate and sample). The bytes are json.dumps's with these options.
_ID_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
# The same encoder's C core, made once: ``encode`` builds it anew per call, half of an id's cost. Without
# the circular-reference check, which ids (tuples of plain values) never need.
_MAKE_CORE: Any = getattr(json_encoder, "c_make_encoder", None)  # absent from the stubs; None without _json
_ID_CORE: Any = None if _MAKE_CORE is None else _MAKE_CORE(
    None, str, json_encoder.encode_basestring, None, ":", ",", True, False, True)


def stable_id(*parts: Any, length: int = 16) -> str:
    """A content hash, so that the same input always gets the same id on any machine."""
    text = _ID_ENCODER.encode(parts) if _ID_CORE is None else "".join(_ID_CORE(parts, 0))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class VideoStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


class FrameGrid(NamedTuple):
    """An ok video's sampled frames: what every builder and annotator places answers on."""

    duration_s: float
    fps: float
    num_frames: int


class NativeStream(NamedTuple):
    """A probed file's own frames: what a decoder is asked for."""

    native_fps: float
    num_native_frames: int


class VideoRecord(_Model):
    """One probed video. An unreadable file is still a row, with ``status=error`` and the reason."""

    video_id: Identifier
    path: VideoPath = Field(description="Path relative to the video root, inside it.")
    status: VideoStatus
    error: str | None = None
    duration_s: float | None = Field(default=None, gt=0)
    native_fps: float | None = Field(default=None, gt=0)
    num_native_frames: int | None = Field(default=None, gt=0)
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    sample_fps: float | None = Field(default=None, gt=0)
    num_frames: int | None = Field(default=None, gt=0, description="Sampled frames at sample_fps.")
    frame_indices: list[int] | None = Field(default=None, description="Native index of each sampled frame.")
    backend: str | None = None
    variable_frame_rate: bool | None = Field(
        default=None, description="True when frame durations vary, so frame_indices were chosen by frame timestamps"
                                  " (the frame on screen at the end of each sampling window), not by index.")

    @model_validator(mode="after")
    def _status_matches_fields(self) -> Self:
        if self.status is VideoStatus.ERROR:
            if not self.error:
                raise ValueError(f"video {self.path}: an error row must say why")
            return self
        # Probed videos know everything; videos known from annotation metadata alone (no file at hand)
        # know their duration and the frame grid derived from it, and say so with backend="metadata".
        required = ["duration_s", "sample_fps", "num_frames"]
        if self.backend != METADATA_BACKEND:
            required += ["native_fps", "num_native_frames", "width", "height"]
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"video {self.path}: status ok but {', '.join(missing)} missing")
        if self.error:
            raise ValueError(f"video {self.path}: status ok but an error is set")
        if self.frame_indices is not None:
            if len(self.frame_indices) != self.num_frames:
                raise ValueError(f"video {self.path}: {len(self.frame_indices)} frame indices for"
                                 f" {self.num_frames} frames")
            if self.num_native_frames is None or any(not 0 <= i < self.num_native_frames for i in self.frame_indices):
                raise ValueError(f"video {self.path}: a frame index lies outside the video")
        return self

    # One model holds ok and error rows (one table, one Features), so its grid fields are Optional; these
    # typed views are how code that only sees ok videos reads them, and say which row broke that promise.
    @property
    def grid(self) -> FrameGrid:
        if self.duration_s is None or self.sample_fps is None or self.num_frames is None:
            raise ValueError(f"video {self.path} has no frame grid: {self.error or 'its row is not ok'}")
        return FrameGrid(float(self.duration_s), float(self.sample_fps), int(self.num_frames))

    @property
    def native(self) -> NativeStream:
        if self.native_fps is None or self.num_native_frames is None:
            raise ValueError(f"video {self.path} was not probed from its file ({self.backend or self.error})")
        return NativeStream(float(self.native_fps), int(self.num_native_frames))


class EventKind(StrEnum):
    CAPTION = "caption"
    ACTION = "action"
    STEP = "step"
    HIGHLIGHT = "highlight"
    NARRATION = "narration"
    QA = "qa"


class Provenance(_Model):
    """Where a generated event came from, so a corpus can be audited and regenerated."""

    model: str
    prompt_hash: str | None = None
    params: dict[str, str] = Field(default_factory=dict)


class Event(_Model):
    """A time-anchored piece of text about one video: a caption, an action, a step, a QA pair."""

    event_id: Identifier
    video_id: Identifier
    duration_s: float = Field(gt=0, description="Duration of the video, so the event can check itself.")
    start_s: Seconds
    end_s: Seconds
    text: NonEmpty
    kind: EventKind
    source: NonEmpty
    answer: str | None = Field(default=None, description="The answer, for kind=qa (text is the question).")
    moment: str | None = Field(default=None, description=(
        "Events of one source that describe the same moment (paraphrases) share this id; builders that"
        " tell a sequence of events use one description per moment."))
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _within_video(self) -> Self:
        if self.start_s > self.end_s:
            raise ValueError(f"event {self.event_id}: start {self.start_s}s is after end {self.end_s}s")
        if self.end_s > self.duration_s + TIME_TOLERANCE_S:
            raise ValueError(
                f"event {self.event_id}: end {self.end_s}s is past the video's duration {self.duration_s}s"
            )
        if self.kind is EventKind.QA and not self.answer:
            raise ValueError(f"event {self.event_id}: a qa event needs an answer")
        return self

    @classmethod
    def create(cls, **fields: Any) -> Event:
        """Build an event whose id is the hash of what it says, so re-annotation is idempotent."""
        key = (fields["video_id"], _canonical_seconds(fields["start_s"]), _canonical_seconds(fields["end_s"]),
               fields["text"], fields["kind"], fields["source"], fields.get("answer"))
        return cls(event_id=stable_id(*key), **fields)


class QuestionTurn(_Model):
    """A user instruction shown at ``time`` seconds (the reference's ``question`` items)."""

    content: NonEmpty
    time: Seconds


class ResponseTurn(_Model):
    """An answer with either an evidence span (``st_time``, ``end_time``) or an instant ``time``."""

    content: NonEmpty
    st_time: Seconds | None = None
    end_time: Seconds | None = None
    time: Seconds | None = None

    @model_validator(mode="after")
    def _span_or_time(self) -> Self:
        if (self.st_time is None) != (self.end_time is None):
            raise ValueError(f"response {self.content[:40]!r}: a span needs both st_time and end_time")
        if self.st_time is not None and self.end_time is not None:
            if self.st_time > self.end_time:
                raise ValueError(
                    f"response {self.content[:40]!r}: st_time {self.st_time}s is after end_time {self.end_time}s"
                )
        elif self.time is None:
            raise ValueError(f"response {self.content[:40]!r}: needs a span (st_time, end_time) or a time")
        return self

    def latest_time(self) -> float:
        return self.end_time if self.end_time is not None else self.time  # type: ignore[return-value]  # validated: a span or a time


# The validation context key under which StreamingSample.create hands its validator what it derived.
_DERIVED = "streamo_data.derived"


class StreamingSample(_Model):
    """One instruction sample on one video, with the per-frame states it implies.

    The raw-annotation fields (questions, responses) are the source of truth; ``states`` and
    ``answers`` are derived from them by :func:`streamo_data.core.align.align` and re-checked here, so a
    row whose labels disagree with its turns cannot be written or loaded.
    """

    sample_id: Identifier
    task: Identifier
    source: NonEmpty
    video_id: Identifier
    video_path: VideoPath
    video_name: NonEmpty
    duration_s: float = Field(gt=0, le=MAX_VIDEO_DURATION_S)
    fps: float = Field(gt=0)
    num_frames: int = Field(gt=0)
    questions: list[QuestionTurn] = Field(min_length=1)
    responses: list[ResponseTurn] = Field(min_length=1)
    states: list[State]
    answers: list[str]

    @staticmethod
    def content_id(task: str, source: str, video_id: str, fps: float, num_frames: int,
                   questions: list[QuestionTurn], responses: list[ResponseTurn]) -> str:
        # A turn's __dict__ is its model_dump (flat fields), at a tenth of the cost; keys are sorted anyway
        return stable_id(task, source, video_id, fps, num_frames,
                         [q.__dict__ for q in questions], [r.__dict__ for r in responses])

    @classmethod
    def create(cls, *, task: str, source: str, video_id: str, video_path: str, duration_s: float,
               fps: float, num_frames: int, questions: list[QuestionTurn],
               responses: list[ResponseTurn], video_name: str | None = None) -> StreamingSample:
        """Derive states, answers and the content id, then validate the whole row. Numbers are made
        canonical first (an int or numpy fps, float noise in times), so equal content gets one id."""
        fps, num_frames = float(fps), int(num_frames)
        # a turn that is already one (a builder's) is frozen and valid: only the others are validated
        questions = [q if type(q) is QuestionTurn else QuestionTurn.model_validate(q) for q in questions]
        responses = [r if type(r) is ResponseTurn else ResponseTurn.model_validate(r) for r in responses]
        # Past the maximum, the labels are not derived (that costs memory per frame): validation says why.
        alignment = (align(questions, responses, num_frames, fps) if too_long(duration_s, num_frames, fps) is None
                     else Alignment([], [], {}))
        sample_id = cls.content_id(task, source, video_id, fps, num_frames, questions, responses)
        # The labels and the id were just derived from these very turns: the validator checks the rest
        # and takes them as derived, rather than aligning and hashing each sample a second time.
        return cls.model_validate({
            "sample_id": sample_id, "task": task, "source": source, "video_id": video_id, "video_path": video_path,
            "video_name": video_name or video_path.rsplit("/", 1)[-1], "duration_s": duration_s,
            "fps": fps, "num_frames": num_frames, "questions": questions, "responses": responses,
            "states": alignment.states, "answers": alignment.answers,
        }, context={_DERIVED: (alignment, sample_id)})

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        where = f"sample {self.sample_id} ({self.task}, video {self.video_id})"
        long = too_long(self.duration_s, self.num_frames, self.fps)
        if long:
            raise ValueError(f"{where}: {long}")
        limit = self.duration_s + TIME_TOLERANCE_S
        for q in self.questions:
            if q.time > limit:
                raise ValueError(f"{where}: question at {q.time}s is past the video's end ({self.duration_s}s)")
        for r in self.responses:
            if r.latest_time() > limit:
                raise ValueError(
                    f"{where}: response {r.content[:40]!r} at {r.latest_time()}s is past the video's end"
                    f" ({self.duration_s}s)"
                )
        if len(self.states) != self.num_frames or len(self.answers) != self.num_frames:
            raise ValueError(
                f"{where}: {len(self.states)} states and {len(self.answers)} answers for {self.num_frames}"
                " frames; there must be exactly one label per frame"
            )
        derived = (info.context or {}).get(_DERIVED)
        if derived is not None and derived[1] == self.sample_id:  # made by create() from these turns
            alignment, expected = derived
        else:
            alignment = align(self.questions, self.responses, self.num_frames, self.fps)
            expected = self.content_id(self.task, self.source, self.video_id, self.fps, self.num_frames,
                                       self.questions, self.responses)
        if alignment.issues:
            raise ValueError(f"{where}: " + "; ".join(alignment.issues))
        if alignment.states != list(self.states) or alignment.answers != list(self.answers):
            raise ValueError(f"{where}: states/answers disagree with its questions and responses")
        if self.sample_id != expected:
            raise ValueError(f"{where}: sample_id is not the hash of its content (expected {expected})")
        return self

    def to_raw(self) -> dict[str, Any]:
        """The reference raw-annotation record (lossless: the turns are the source of truth)."""
        return {
            "video_name": self.video_name,
            "video_path": self.video_path,
            "task_type": self.task,
            "source": self.source,
            "question": [q.model_dump() for q in self.questions],
            "response": [r.model_dump(exclude_none=True) for r in self.responses],
        }


# A manifest comes with a downloaded release, so its names are untrusted input: they become file names
# (export raw writes ``<split>``-named files) and paths that every reader opens. Each is one plain name, the
# path one file under ``data/<task>/``: no ``..``, no absolute path, nothing outside the release.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
SHARD_PATH_PATTERN = r"^data/[A-Za-z0-9_][A-Za-z0-9_.\-]*/[A-Za-z0-9_][A-Za-z0-9_.\-]*\.parquet$"


class ShardInfo(_Model):
    path: str = Field(pattern=SHARD_PATH_PATTERN, description="data/<task>/<split>-*.parquet, inside the release")
    task: str = Field(pattern=NAME_PATTERN)
    split: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    num_rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _path_is_the_shards_own(self) -> ShardInfo:
        folder, name = self.path.split("/")[1:]
        if folder != self.task or not name.startswith(f"{self.split}-"):
            raise ValueError(f"shard path {self.path} is not under data/{self.task}/ named {self.split}-*")
        return self


class Decontamination(_Model):
    """What one benchmark file took out of a build: its videos found in the corpus (by source) and the
    candidate samples those videos offered every task (by source), of which the quotas would have taken some."""

    benchmark: str
    file: str
    benchmark_videos: int = Field(ge=0)
    corpus_videos: dict[str, int] = Field(default_factory=dict)
    candidates_removed: dict[str, int] = Field(default_factory=dict)


class ReleaseManifest(_Model):
    """What a release holds, with a checksum per shard so a copy can be verified byte for byte."""

    name: str
    version: str
    fps: float
    num_samples: int
    tasks: list[Annotated[str, Field(pattern=NAME_PATTERN)]]
    shards: list[ShardInfo]
    targets: dict[str, int] = Field(default_factory=dict, description="Per-task quotas of the mixture config.")
    fingerprint: str | None = Field(default=None, description="Hash of the build's config and inputs.")
    decontamination: list[Decontamination] = Field(
        default_factory=list, description="Per benchmark file of the config's decontaminate: list, what it removed.")


EXPORTED_MODELS: dict[str, type[BaseModel]] = {
    "video_record": VideoRecord,
    "event": Event,
    "streaming_sample": StreamingSample,
    "release_manifest": ReleaseManifest,
}
