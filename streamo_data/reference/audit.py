"""Audit of a corpus in the released Streamo-Instruct layout: what the reference converter would lose.

The release is one folder per task type (``qa/``, ``event_grounding/``, ``event_caption/``,
``action_caption/``, ``narration/``) of JSON lists of raw-annotation records. Each record goes through the
reference converter's own decisions (:func:`streamo_data.formats.render.reference_frames`, the same code
``streamo convert raw-to-stream`` runs), and per task folder and ``source`` we count:

* records, and records the converter would write but silently lose part of, by kind of loss: an answer
  overwritten (by a later answer or standby on its frame), a turn past the last frame, two questions on one
  frame (the later one shown), a turn without a readable time;
* malformed records (the converter aborts its whole run on them, drops them, or they hold no answer), by reason;
* records dropped because their video is missing or unreadable (only with ``--video-root``);
* the per-frame states the converter writes, responses per record, and video lengths, beside the paper's.

Frame counts come from the videos when a video root is given (the reference's own count); without one, a
record's video is taken to end one frame after its latest time, the shortest video that holds every turn,
so nothing is reported past the end and video lengths are lower bounds; a record whose latest time is past
the longest video the corpus takes (12 h) is counted malformed instead, never built frame by frame. A file
that cannot be read (or that breaks off half way) is reported in one line and the audit goes on with the next;
what was read of it counts.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.core.align import State
from streamo_data.core.errors import UserError
from streamo_data.core.schema import MAX_VIDEO_DURATION_S, max_sampled_frames
from streamo_data.corpus.fidelity import RELEASE_FOLDERS, STATES, fidelity, length_histogram, ratio_text
from streamo_data.formats.raw_records import RawInputError, open_raw_records
from streamo_data.formats.render import STATE_TOKENS
from streamo_data.reference.convert import record_name, reference_frame_count
from streamo_data.reference.rules import (
    ReferenceAbort,
    reference_frames,
    reference_time,
    reference_turns,
    reference_video_path,
)

RECORD_SUFFIXES = (".json", ".jsonl")
MAX_EXAMPLES = 50
NO_SOURCE = "(none)"

# The kinds of silent loss, told apart by the words reference_frames uses for each (tests pin every kind).
LOSS_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("answer_overwritten", ("answers on the same frame", "a later standby covers")),
    ("past_end", ("past the last frame",)),
    ("same_frame_question", ("replaces it on frame",)),
    ("untimed", ("is missing or unreadable", "no readable span or time")),
)
_STATE_OF_TOKEN = {token: state.value for state, token in STATE_TOKENS.items()}
# Every frame of a record's video is built, so a video past the corpus's maximum length is not audited: a
# time of 1e8 (a typo, or a crafted file) would be 1e8 frames and gigabytes for one 200-byte record.
LATE_TIME = (f"a time past {MAX_VIDEO_DURATION_S / 3600:g} h, the longest a video may last (not audited;"
             " give --video-root to count the video's own frames)")
LONG_VIDEO = f"video longer than {MAX_VIDEO_DURATION_S / 3600:g} h, the longest a video may last (not audited)"


def loss_kind(loss: str) -> str:
    for kind, phrases in LOSS_KINDS:
        if any(phrase in loss for phrase in phrases):
            return kind
    return "other"


def drop_reason(reason: str) -> str:
    """The kind of a reference_frame_count failure, without the path (so reasons count together)."""
    for prefix, kind in (("video not found", "video not found"), ("cannot read video", "unreadable video"),
                         ("no frames", "video without frames")):
        if reason.startswith(prefix):
            return kind
    return reason


@dataclass
class GroupAudit:
    """The counts of one task folder and source."""

    records: int = 0
    lossy: int = 0
    losses: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    responses: int = 0
    converted: int = 0

    def add(self, other: GroupAudit) -> None:
        self.records += other.records
        self.lossy += other.lossy
        self.converted += other.converted
        self.responses += other.responses
        for mine, theirs in ((self.losses, other.losses), (self.malformed, other.malformed),
                             (self.dropped, other.dropped), (self.states, other.states)):
            mine.update(theirs)

    def as_dict(self) -> dict[str, Any]:
        frames = sum(self.states.values())
        return {
            "records": self.records, "lossy_records": self.lossy, "losses": dict(sorted(self.losses.items())),
            "malformed": sum(self.malformed.values()), "malformed_reasons": dict(sorted(self.malformed.items())),
            "dropped": sum(self.dropped.values()), "dropped_reasons": dict(sorted(self.dropped.items())),
            "frames": frames,
            "state_share": {s: round(self.states[s] / frames, 4) if frames else 0.0 for s in STATES},
            "state_ratio": ratio_text(self.states),
            "responses_per_record": round(self.responses / self.converted, 3) if self.converted else 0.0,
        }


@dataclass
class AuditReport:
    root: Path
    video_root: Path | None
    fps: float
    groups: dict[tuple[str, str], GroupAudit] = field(default_factory=dict)
    files: int = 0
    bad_files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    unshown: int = 0
    video_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_from(self) -> str:
        return "videos" if self.video_root else "latest time in each record (no --video-root)"

    def group(self, folder: str, source: str) -> GroupAudit:
        return self.groups.setdefault((folder, source), GroupAudit())

    def note(self, line: str) -> None:
        """Keep the first problems as one-line examples; the counts hold them all."""
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(line)
        else:
            self.unshown += 1

    def folders(self) -> dict[str, GroupAudit]:
        totals: dict[str, GroupAudit] = defaultdict(GroupAudit)
        for (folder, _), audit in self.groups.items():
            totals[folder].add(audit)
        return {folder: totals[folder] for folder in RELEASE_FOLDERS if folder in totals}

    def total(self) -> GroupAudit:
        total = GroupAudit()
        for audit in self.groups.values():
            total.add(audit)
        return total

    def as_dict(self) -> dict[str, Any]:
        folders, total = self.folders(), self.total()
        lengths = length_histogram(self.video_seconds.values())
        return {
            "root": str(self.root), "video_root": str(self.video_root) if self.video_root else None,
            "fps": self.fps, "frames_from": self.frames_from, "files": self.files,
            "bad_files": self.bad_files, "skipped": self.skipped,
            "total": total.as_dict(),
            "folders": {folder: audit.as_dict() for folder, audit in folders.items()},
            "groups": [{"folder": folder, "source": source, **self.groups[(folder, source)].as_dict()}
                       for folder in folders for f, source in sorted(self.groups) if f == folder],
            "videos": len(self.video_seconds), "video_length": lengths,
            "fidelity": fidelity({folder: audit.records for folder, audit in folders.items()}, total.states,
                                 lengths, total.responses, total.converted, by="folder"),
            "examples": self.examples, "examples_not_shown": self.unshown,
        }


def record_files(root: Path, report: AuditReport) -> Iterator[tuple[str, Path]]:
    """(task folder, file) for every record file of the layout, in a fixed order; what is not part of the
    layout is listed in ``report.skipped``."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    present = [folder for folder in RELEASE_FOLDERS if (root / folder).is_dir()]
    if not present:
        names = ", ".join(f"{folder}/" for folder in RELEASE_FOLDERS)
        raise UserError(f"{root} holds none of the released task folders ({names}): not a corpus in the"
                        " Streamo-Instruct layout")
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(".") and entry.name not in RELEASE_FOLDERS:
            report.skipped.append(f"{entry.name}{'/' if entry.is_dir() else ''}: not a task folder of the layout")
    report.skipped += [f"{folder}/: missing" for folder in RELEASE_FOLDERS if folder not in present]
    for folder in present:
        for path in sorted((root / folder).rglob("*")):
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix in RECORD_SUFFIXES:
                yield folder, path
            else:
                report.skipped.append(f"{path.relative_to(root)}: not a .json file")


def latest_frames(questions: list[dict[str, Any]], responses: list[dict[str, Any]], fps: float) -> int:
    """Frames of the shortest video holding every turn: one past the latest time (in the reference's units)."""
    times = [reference_time(q.get("time"), fps) for q in questions]
    times += [reference_time(r.get(key), fps) for r in responses for key in ("st_time", "end_time", "time")]
    return max([1, *(t + 1 for t in times if t is not None)])


def audit_record(report: AuditReport, folder: str, where: str, record: Any) -> None:
    """Count one record into its folder and source group."""
    source = record.get("source") if isinstance(record, dict) else None
    group = report.group(folder, str(source) if source else NO_SOURCE)
    group.records += 1

    def malformed(reason: str) -> None:
        group.malformed[reason] += 1
        report.note(f"{where}: malformed: {reason}")

    if not isinstance(record, dict):
        return malformed(f"a {type(record).__name__}, not an object (the reference aborts its run)")
    try:
        questions, responses = reference_turns(record, "question"), reference_turns(record, "response")
    except ReferenceAbort as error:
        return malformed(f"{error} (the reference aborts its run)")
    path = reference_video_path(record)
    if not path:
        return malformed("no video_path (the reference drops it)")
    if not isinstance(path, str):
        return malformed("video_path is not a string (the reference aborts its run)")
    if not any(r.get("content") for r in responses):
        return malformed("no response with text (every frame would be silence)")
    try:
        if report.video_root is not None:
            counted = reference_frame_count(os.path.join(report.video_root, path), report.fps)
            if isinstance(counted, str):
                group.dropped[drop_reason(counted)] += 1
                report.note(f"{where}: dropped by the reference: {counted}")
                return None
            frames = counted
        else:
            frames = latest_frames(questions, responses, report.fps)
        if frames > max_sampled_frames(report.fps):  # a time of 1e8 would be 1e8 frames to build
            return malformed(LONG_VIDEO if report.video_root is not None else LATE_TIME)
        converted = reference_frames(frames, questions, responses, report.fps)
    except ReferenceAbort as error:
        return malformed(f"{error} (the reference aborts its run)")
    group.converted += 1
    group.responses += len(responses)
    report.video_seconds[path] = max(report.video_seconds.get(path, 0.0), frames / report.fps)
    for state in converted.states:
        group.states[_STATE_OF_TOKEN.get(state, State.RESPONSE.value)] += 1
    if converted.losses:
        group.lossy += 1
        for loss in converted.losses:
            kind = loss_kind(loss)
            group.losses[kind] += 1
            report.note(f"{where}: {kind}: {loss}")
    return None


def audit_release(root: Path, video_root: Path | None = None, fps: float = 1.0) -> AuditReport:
    """Audit every record file under ``root``; raises UserError only when ``root`` is not in the layout."""
    if video_root is not None and not video_root.is_dir():
        raise UserError(f"--video-root {video_root} is not a folder")
    report = AuditReport(root=root, video_root=video_root, fps=fps)
    for folder, path in record_files(root, report):
        report.files += 1
        read = 0
        try:
            for read, record in enumerate(open_raw_records(path).records, start=1):
                audit_record(report, folder, f"{path.relative_to(root)} {record_name(record, read - 1)}", record)
        except (RawInputError, OSError) as error:
            message = str(error) if isinstance(error, RawInputError) else f"{path}: cannot read: {error}"
            report.bad_files.append(message + (f" (after {read} records, which are counted)" if read else ""))
    return report
