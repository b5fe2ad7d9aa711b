"""A release -> the reference's stream format, for training with the reference (ms-swift) trainer.

Rendering follows our rule (:mod:`streamo_data.formats.render`); a ``.json`` target gets the reference's
own layout (one JSON list, indent 2) and is written one record at a time, atomically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamo_data.formats.render import REFERENCE_SYSTEM_PROMPT, iter_record_text, render_sample
from streamo_data.release.read import iter_release_samples
from streamo_data.store.io import atomic_path
from streamo_data.store.storage import AnyPath


def export_stream_format(release_dir: AnyPath, out_file: Path, video_root: str | None = None,
                         split: str | None = None, system_prompt: str = REFERENCE_SYSTEM_PROMPT) -> int:
    """Render every sample of a release (or of one split) for the reference trainer; returns the count.
    A ``.json`` target gets the reference's own layout (one JSON list, indent 2), anything else JSONL."""
    rendered = 0

    def records() -> Iterator[dict[str, Any]]:
        nonlocal rendered
        for sample in iter_release_samples(release_dir, split):
            rendered += 1
            yield render_sample(sample, video_root, system_prompt=system_prompt)

    with atomic_path(out_file) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for text in iter_record_text(records(), as_json_list=out_file.suffix == ".json"):  # one record in memory
            handle.write(text)
    return rendered
