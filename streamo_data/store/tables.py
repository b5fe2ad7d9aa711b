"""The work files between stages (videos, events, samples) as Parquet with fixed Arrow schemas.

Schemas are declared once, as `datasets.Features`, so that a file written by any stage reads back
with the same types in pandas, pyarrow and `datasets`, and an all-null column never loses its type.
Rows are validated by the pydantic models on the way in and on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Value
from pydantic import BaseModel, ValidationError

from streamo_data.core.align import State
from streamo_data.core.errors import MissingInput, UserError
from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import Event, StreamingSample, VideoRecord
from streamo_data.store.io import write_atomic
from streamo_data.store.storage import AnyPath, arrow_source, open_snapshot

M = TypeVar("M", bound=BaseModel)

VIDEO_FEATURES = Features({
    "video_id": Value("string"), "path": Value("string"), "status": Value("string"), "error": Value("string"),
    "duration_s": Value("float64"), "native_fps": Value("float64"), "num_native_frames": Value("int64"),
    "width": Value("int32"), "height": Value("int32"), "sample_fps": Value("float64"),
    "num_frames": Value("int32"), "frame_indices": [Value("int64")], "backend": Value("string"),
    "variable_frame_rate": Value("bool"),
})

EVENT_FEATURES = Features({
    "event_id": Value("string"), "video_id": Value("string"), "duration_s": Value("float64"),
    "start_s": Value("float64"), "end_s": Value("float64"), "text": Value("string"), "kind": Value("string"),
    "source": Value("string"), "answer": Value("string"), "moment": Value("string"),
    "provenance": Value("string"),  # JSON: its params differ per annotator, a struct would not hold them
})

SAMPLE_FEATURES = Features({
    "sample_id": Value("string"), "task": Value("string"), "source": Value("string"),
    "video_id": Value("string"), "video_path": Value("string"), "video_name": Value("string"),
    "duration_s": Value("float64"), "fps": Value("float64"), "num_frames": Value("int32"),
    "questions": [{"content": Value("string"), "time": Value("float64")}],
    "responses": [{"content": Value("string"), "st_time": Value("float64"), "end_time": Value("float64"),
                   "time": Value("float64")}],
    "states": [Value("string")],
    "answers": [Value("string")],
})

_FEATURES: dict[type[BaseModel], Features] = {
    VideoRecord: VIDEO_FEATURES, Event: EVENT_FEATURES, StreamingSample: SAMPLE_FEATURES,
}
_JSON_COLUMNS: dict[type[BaseModel], tuple[str, ...]] = {Event: ("provenance",)}


# Each state as the plain string it stands for. Arrow converts a str subclass (a StrEnum member) on a slow
# path, about 0.15 us a frame against 0.03 for a str: two thirds of the cost of a sample's row.
_STATE_TEXT = {state: state.value for state in State}


def _state_texts(states: list[State]) -> list[str]:
    return list(map(_STATE_TEXT.__getitem__, states))


def to_row(model: BaseModel) -> dict[str, Any]:
    if isinstance(model, StreamingSample):
        # python mode: the "json" mode would look up each state's .value in Python, one frame at a time
        row = model.model_dump(mode="python")
        row["states"] = _state_texts(row["states"])
        return row
    row = model.model_dump(mode="json")
    for column in _JSON_COLUMNS.get(type(model), ()):
        if row[column] is not None:
            row[column] = json.dumps(row[column], sort_keys=True)
    return row


_SAMPLE_SCALARS = [name for name in SAMPLE_FEATURES if name not in ("questions", "responses", "states", "answers")]


def samples_table(samples: list[StreamingSample], schema: pa.Schema = SAMPLE_FEATURES.arrow_schema,
                  **extra: list[Any]) -> pa.Table:
    """Samples as a table, column by column: the rows of :func:`to_row` without building them. A batch's
    table is made straight from the samples' fields (a turn's ``__dict__`` is its dump: flat fields), which
    is half the cost of dumping each sample and regrouping the dicts into columns. ``extra`` columns (a
    part's ``split``) come last, as ``schema`` names them."""
    columns: dict[str, list[Any]] = {name: [getattr(sample, name) for sample in samples] for name in _SAMPLE_SCALARS}
    columns["questions"] = [[turn.__dict__ for turn in sample.questions] for sample in samples]
    columns["responses"] = [[turn.__dict__ for turn in sample.responses] for sample in samples]
    columns["states"] = [_state_texts(sample.states) for sample in samples]
    columns["answers"] = [sample.answers for sample in samples]
    return pa.Table.from_pydict({**columns, **extra}, schema=schema)


def from_row(model: type[M], row: dict[str, Any]) -> M:
    """A stored row as its model. A row that does not validate (a release made elsewhere, or damaged) is
    one line naming it, for every reader at once; ``streamo validate`` lists them all."""
    row = dict(row)
    for column in _JSON_COLUMNS.get(model, ()):
        if row.get(column) is not None:
            row[column] = json.loads(row[column])
    try:
        return model.model_validate(row)
    except ValidationError as error:
        name = row.get("sample_id") or row.get("event_id") or row.get("video_id") or "?"
        raise UserError(f"{model.__name__} {name}: {validation_messages(error)[0]}"
                        " (streamo validate lists every such row)") from None


def to_table(model: type[BaseModel], rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=_FEATURES[model].arrow_schema)


def write_rows(path: AnyPath, model: type[BaseModel], rows: Iterable[dict[str, Any]]) -> int:
    """Write already-serialised rows atomically; returns how many."""
    table = to_table(model, rows)
    write_atomic(path, lambda temporary: pq.write_table(table, temporary, compression="zstd"))
    return table.num_rows


def unreadable(path: AnyPath, error: Exception) -> UserError:
    """The one message for a Parquet file that cannot be read: pyarrow's own names no file."""
    if isinstance(error, FileNotFoundError):
        return MissingInput(f"{path}: no such file")
    return UserError(f"{path}: not a readable Parquet file ({error})")


def parquet_file(path: AnyPath) -> pq.ParquetFile:
    """An open Parquet file, or a UserError naming it (a truncated copy, a file of another format)."""
    source, filesystem = arrow_source(path)
    try:
        return pq.ParquetFile(source, filesystem=filesystem)
    except (pa.ArrowException, OSError) as error:
        raise unreadable(path, error) from error


def read_table(path: AnyPath, columns: list[str] | None = None,
               filters: list[tuple[str, str, Any]] | None = None, snapshot: str | None = None) -> pa.Table:
    """``pq.read_table`` on any filesystem, with a UserError naming the file when it cannot be read. With
    ``snapshot`` (a version under which the file does not change), an object is read from this process's
    local copy (:func:`streamo_data.store.storage.open_snapshot`)."""
    source, filesystem = arrow_source(path)
    try:
        if snapshot is not None and filesystem is not None:
            with open_snapshot(path, snapshot) as handle:
                return pq.read_table(handle, columns=columns, filters=filters, pre_buffer=False)  # as below
        # An fsspec filesystem (or a Python file) is Python: pre-buffering reads it from Arrow's IO threads,
        # which can still be inside it when the interpreter exits and abort the process ("terminate called
        # without an active exception", apache/arrow#39162). A local file keeps pre-buffering.
        return pq.read_table(source, columns=columns, filters=filters, filesystem=filesystem,
                             pre_buffer=filesystem is None)
    except (pa.ArrowException, OSError) as error:
        raise unreadable(path, error) from error


def iter_rows(path: AnyPath, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """Rows of a Parquet file, a batch at a time, so memory stays flat whatever its size."""
    batches = parquet_file(path).iter_batches(batch_size=batch_size)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as error:  # a damaged page after a good footer
            raise unreadable(path, error) from error
        yield from batch.to_pylist()


def rows_if_present(path: AnyPath) -> list[dict[str, Any]]:
    """A table's rows, or none when the stage that writes it has not run yet (a first run reads nothing)."""
    return list(iter_rows(path)) if path.exists() else []
