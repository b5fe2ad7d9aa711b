"""A content-addressed cache of requests and replies, so no request is ever sent twice.

The key is the SHA-256 of the request as sent (model, messages with their images, parameters, output
schema) and never of the credentials; the value is the reply text and its token usage. Entries are
written atomically as soon as a reply arrives, so a run killed midway loses nothing it was answered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from streamo_data.io import write_text_atomic


def request_key(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def put(self, key: str, value: dict[str, Any]) -> None:
        write_text_atomic(self._path(key), json.dumps(value, ensure_ascii=False))

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.exists() else 0
