"""Reading a release: where its manifest is and what it lists, for every reader (validate, stats, exports,
show, training) and for the writer that replaces it. Kept apart from writing a release so that reading
one loads none of the writer (shards, card, plots)."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import SHARD_PATH_PATTERN, ReleaseManifest
from streamo_data.store.storage import AnyPath

MANIFEST = "manifest.json"
PENDING = ".pending.json"  # the shards of a release being written, before its manifest lists them


def read_manifest(release_dir: AnyPath) -> ReleaseManifest:
    path = release_dir / MANIFEST
    if not path.exists():
        raise MissingInput(f"{release_dir} is not a release: {MANIFEST} is missing")
    try:
        return ReleaseManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise UserError(f"{path}: not a release manifest ({validation_messages(error)[0]})") from error


def pending_shards(out_dir: AnyPath) -> set[str]:
    """The shards a release being written (or killed while writing) has put beside the current one."""
    path = out_dir / PENDING
    if not path.exists():
        return set()
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return set()
    if not isinstance(listed, list):
        return set()
    return {item for item in listed if isinstance(item, str) and re.match(SHARD_PATH_PATTERN, item)}
