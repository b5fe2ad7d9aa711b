"""The Arrow/`datasets` Features of each table name exactly the fields of its pydantic model (nested turns
included), so a field added to a model cannot be silently dropped on its way to Parquet."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from streamo_data.core.schema import Event, QuestionTurn, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.store.tables import EVENT_FEATURES, SAMPLE_FEATURES, VIDEO_FEATURES


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
