"""QuerYD (Oncescu et al. 2021; github.com/oncescuandreea/QuerYD_downloader): the localised audio descriptions
ship as two pickles published at robots.ox.ac.uk/~vgg/research/collaborative-experts/data/QuerYD/,
``raw_captions_combined_filtered[-v2].pkl``: ``{"video-YOUTUBE_ID": [[token, ...], ...]}`` (each description
as a list of words) and ``times_captions_combined_filtered[-v2].pkl``: ``{"video-YOUTUBE_ID": [[start, end],
...]}`` in seconds, in the same order. Give the captions file; the times file is found beside it by name.
JSON conversions of the two files (same names, ``.json``), which some projects distribute, are read too.

A pickle can run code when loaded, so only plain containers are accepted (lists, dicts, strings, numbers):
anything else is refused with a UserError, never constructed. Still, give it only a file you downloaded
yourself from the address above. Durations are not in the files: give ``--videos``. Each description becomes
a caption event on video ``YOUTUBE_ID`` (the ``video-`` prefix dropped, as the videos are saved)."""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    number,
    read_json,
    text_lines,
)
from streamo_data.store.storage import AnyPath

PREFIX = "video-"


class _PlainUnpickler(pickle.Unpickler):
    """Loads lists, dicts, strings and numbers only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; only plain lists, dicts, strings and"
                                     " numbers are accepted")


def load_plain(path: AnyPath) -> Any:
    """A QuerYD file's content: JSON by its suffix, else a pickle of plain containers (UserError otherwise)."""
    if path.suffix.lower() == ".json":
        return read_json(path)
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise UserError(f"{path}: not a QuerYD pickle of plain data ({error}); convert it to JSON") from error


def times_file(captions: AnyPath) -> AnyPath:
    if "raw_captions" not in captions.name:
        raise UserError(f"{captions}: give QuerYD's raw_captions_combined_filtered file (its times file is found"
                        " beside it by name)")
    times = captions.with_name(captions.name.replace("raw_captions", "times_captions"))
    if not times.exists():
        raise UserError(f"{captions}: its timestamps file {times.name} is not beside it")
    return times


def split_lists(captions: AnyPath) -> dict[str, str]:
    """Video id -> its official subset, from ``{train,val,test}_list.txt`` beside the captions file (one id a
    line, with or without the ``video-`` prefix); empty when none is there."""
    subsets: dict[str, str] = {}
    for subset in ("train", "val", "test"):
        listed = captions.with_name(f"{subset}_list.txt")
        if listed.exists():
            for line in text_lines(listed):
                video = line.strip().removeprefix(PREFIX)
                if video:
                    subsets.setdefault(video, subset)
    return subsets


def _text(caption: Any) -> str:
    if isinstance(caption, str):
        return caption.strip()
    if isinstance(caption, list) and all(isinstance(word, str) for word in caption):
        return " ".join(caption).strip()
    raise ValueError("a description is a string or a list of words")


class QuerYD:
    name: ClassVar[str] = "queryd"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    # the official split lists of the QuerYD benchmark (train_list.txt 9113, val_list.txt 1952, test_list.txt
    # 1954 videos), read from beside the captions file; without them no video's split is known
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("val", "test"))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        times_path = times_file(path)
        captions, times = load_plain(path), load_plain(times_path)
        if not isinstance(captions, dict) or not isinstance(times, dict):
            raise UserError(f"{path}: QuerYD captions and times are mappings of video id to lists")
        subsets = split_lists(path)
        records = ((f"{path.name}:{key}", (key, value)) for key, value in captions.items())
        yield from each_record(records, lambda where, record: self._events(where, *record, times, subsets, report),
                               report)

    def _events(self, where: str, key: Any, video_captions: Any, times: dict[Any, Any], subsets: dict[str, str],
                report: RecipeReport) -> Iterator[RawEvent]:
        if key not in times:
            report.skip(where, "no timestamps for the video")
            return
        video_times = times[key]
        if not isinstance(video_captions, list) or not isinstance(video_times, list) or len(
                video_captions) != len(video_times):
            report.skip(where, "captions and timestamps differ in length")
            return
        video = str(key)[len(PREFIX):] if str(key).startswith(PREFIX) else str(key)
        for index, (caption, span) in enumerate(zip(video_captions, video_times, strict=True)):
            here = f"{where}[{index}]"
            try:
                if not isinstance(span, list | tuple) or len(span) != 2:
                    raise ValueError("a time is [start, end]")
                start, end = number(span[0]), number(span[1])
            except (TypeError, ValueError):
                report.skip(here, "malformed timestamp")
                continue
            try:
                text = _text(caption)
            except ValueError:
                report.skip(here, "malformed description")
                continue
            if not text:
                report.skip(here, "empty description")
                continue
            yield RawEvent(video, start, end, text, self.kind, where=here, subset=subsets.get(video))
