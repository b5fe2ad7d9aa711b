"""The Arrow/`datasets` Features of each table name exactly the fields of its pydantic model (nested turns
included), so a field added to a model cannot be silently dropped on its way to Parquet."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import BaseModel

from streamo_data.core.schema import Event, QuestionTurn, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.store.tables import EVENT_FEATURES, SAMPLE_FEATURES, VIDEO_FEATURES, samples_table, to_row


@pytest.mark.parametrize(("model", "features"), [(VideoRecord, VIDEO_FEATURES), (Event, EVENT_FEATURES),
                                                 (StreamingSample, SAMPLE_FEATURES)])
def test_features_name_the_models_fields(model: type[BaseModel], features: dict[str, object]) -> None:
    assert list(features) == list(model.model_fields)


@pytest.mark.parametrize(("column", "turn"), [("questions", QuestionTurn), ("responses", ResponseTurn)])
def test_turn_structs_name_the_turn_models_fields(column: str, turn: type[BaseModel]) -> None:
    struct = SAMPLE_FEATURES[column].feature  # a list of structs
    assert list(struct) == list(turn.model_fields)


def test_a_field_missing_from_the_features_is_caught() -> None:
    class Wider(VideoRecord):
        extra_field: int = 0

    assert list(VIDEO_FEATURES) != list(Wider.model_fields)


def test_samples_table_holds_what_to_row_gives() -> None:
    """The build writes a batch's samples column by column; the table must be the one the rows of
    ``to_row`` give, nested turns (a span, an instant, None fields) and per-frame labels included."""
    samples = [
        StreamingSample.create(
            task="dense_captioning", source="activitynet", video_id=f"v{k}", video_path=f"v{k}.mp4",
            duration_s=12.0, fps=1.0, num_frames=12, questions=[{"content": "What happens?", "time": 0.0}],
            responses=[{"content": "a span", "st_time": 1.0, "end_time": 3.0 + k},
                       {"content": "an instant", "time": 10.0}])
        for k in range(3)]
    schema = SAMPLE_FEATURES.arrow_schema.append(pa.field("split", pa.string()))
    splits = ["train", "validation", "train"]
    expected = pa.Table.from_pylist([{**to_row(s), "split": split} for s, split in zip(samples, splits, strict=True)],
                                    schema=schema)
    table = samples_table(samples, schema, split=splits)
    assert table.equals(expected)
    assert table["states"].to_pylist()[0][:5] == ["standby", "standby", "standby", "response", "silence"]
    assert type(table["states"].to_pylist()[0][0]) is str
