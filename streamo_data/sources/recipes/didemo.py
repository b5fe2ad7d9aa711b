"""DiDeMo: ``{train,val,test}_data.json``, a list of ``{"video", "description", "times": [[a, b], ...]}``
where times are indices of 5-second segments (0-5), inclusive, one pair per annotator. We take the
most common pair (ties: the earliest) as the moment, ``a * 5`` to ``(b + 1) * 5`` seconds, the usual
consensus rule. Durations come from the videos or a catalogue (DiDeMo clips run up to 30 s).

Video names are Flickr file names in whatever container the camera wrote (.mov, .mp4, .3gp, .3g2, .wmv,
.mts, .m2ts, ..., and some with a bare trailing dot, ``foo.``): they are kept as paths as given, and a
videos folder maps each to its file by name whatever its extension (see ``VideoCatalogue.get``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import CLIP_TOLERANCE_S, RawEvent, RecipeReport, Splits, each_record, read_json
from streamo_data.store.storage import AnyPath

SEGMENT_S = 5.0
NUM_SEGMENTS = 6


class DiDeMo:
    name: ClassVar[str] = "didemo"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = True  # several descriptions per moment, one per annotator
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("val", "test"),
                                      files=((r"train", "train"), (r"val", "val"), (r"test", "test")))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, list):
            raise UserError(f"{path}: DiDeMo is a JSON list of annotations")
        records = ((f"{path.name}[{index}]", record) for index, record in enumerate(data))
        yield from each_record(records, lambda where, record: self._events(where, record, report), report)

    def _events(self, where: str, record: Any, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(record, dict) or any(k not in record for k in ("video", "description", "times")):
            report.skip(where, "missing field: video/description/times")
            return
        times = record["times"]
        pairs = []
        for pair in times if isinstance(times, list) else []:
            if (isinstance(pair, list) and len(pair) == 2 and all(type(x) is int for x in pair)
                    and 0 <= pair[0] < NUM_SEGMENTS and 0 <= pair[1] < NUM_SEGMENTS):
                pairs.append((pair[0], pair[1]))
        if not pairs:
            report.skip(where, "malformed times: no pair of segment indices 0-5")
            return
        # most annotators agree; on a tie, the earliest moment
        first, last = max(Counter(pairs).items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        if not str(record["description"]).strip():
            report.skip(where, "empty description")
            return
        yield RawEvent(str(record["video"]), first * SEGMENT_S, (last + 1) * SEGMENT_S, str(record["description"]),
                       self.kind, where=where)
