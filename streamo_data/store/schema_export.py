"""JSON Schemas of the data model, exported to ``schemas/`` for users who validate outside Python."""

from __future__ import annotations

import json
from pathlib import Path

from streamo_data.core.schema import EXPORTED_MODELS
from streamo_data.store.io import write_text_atomic


def rendered_schemas() -> dict[str, str]:
    """File name -> exact file text, so a test can compare what is committed with what the code says."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in EXPORTED_MODELS.items()
    }


def export_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_schemas().items():
        write_text_atomic(out_dir / name, text)
        written.append(out_dir / name)
    return written
