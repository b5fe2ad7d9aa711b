"""Paraphrases: several descriptions of one moment, grouped so that no sample tells one moment twice.

Charades-STA and DiDeMo describe each moment several times (one sentence per annotator or per
rewording). Read as a sequence, they would make "what happens right after X?" answered by a rewording
of X, or "Now: person runs away. Now: person runs out of the room." So a recipe whose source has
paraphrases marks them at import, with one rule:

* Two descriptions of one video (one source) are the same moment when their spans overlap with a
  temporal IoU of at least :data:`SAME_MOMENT_IOU` (0.5), the usual bar at which temporal grounding
  counts two spans as the same moment.
* Descriptions are taken in time order; each joins the first moment whose *first* description it
  matches (comparing with the first, not with any member, keeps a chain of small shifts from growing
  one moment across a whole video), or starts a new moment. The moment's id is the event id of its
  first description.

Builders that tell a sequence of events (narration, captioning, time-sensitive and offline QA) use
one description per moment; grounding may ask for each description, since each is a fair query for
the same span.
"""

from __future__ import annotations

import pyarrow as pa

SAME_MOMENT_IOU = 0.5


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time spans; two equal instants are the same moment."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return inter / union


def assign_moments(spans: list[tuple[float, float]], ids: list[str]) -> list[str]:
    """The moment id of each description of one video, spans in time order."""
    firsts: list[tuple[tuple[float, float], str]] = []
    moments = []
    for span, event_id in zip(spans, ids, strict=True):
        moment = next((mid for first, mid in firsts if temporal_iou(first, span) >= SAME_MOMENT_IOU), None)
        if moment is None:
            moment = event_id
            firsts.append((span, event_id))
        moments.append(moment)
    return moments


def with_moments(events: pa.Table) -> pa.Table:
    """``events`` (sorted by video, then start and end) with its ``moment`` column filled in."""
    videos = events["video_id"].to_pylist()
    starts, ends = events["start_s"].to_pylist(), events["end_s"].to_pylist()
    ids = events["event_id"].to_pylist()
    moments: list[str] = []
    begin = 0
    for index in range(1, len(videos) + 1):
        if index == len(videos) or videos[index] != videos[begin]:
            moments.extend(assign_moments(list(zip(starts[begin:index], ends[begin:index], strict=True)),
                                          ids[begin:index]))
            begin = index
    column = events.schema.get_field_index("moment")
    return events.set_column(column, "moment", pa.array(moments, type=pa.string()))
