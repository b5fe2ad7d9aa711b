"""A content-addressed cache of requests and replies, so no request is ever sent twice.

The key is the SHA-256 of the endpoint and the request as sent (model, messages with their images,
parameters, output schema) and never of the credentials: the same model name on two endpoints is two
models. The value is the reply text and its token usage. Entries are written atomically as soon as a
reply arrives, so a run killed midway loses nothing it was answered; an entry that cannot be read
anyway (a disk that filled up, a hand edit) is a miss, answered again and then overwritten.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath


def request_key(request: dict[str, Any], endpoint: str) -> str:
    """``endpoint`` is the base URL in one spelling (see ``ClientSettings.endpoint``)."""
    canonical = json.dumps({"endpoint": endpoint, "request": request}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    def __init__(self, directory: AnyPath) -> None:
        self.directory = directory

    def _path(self, key: str) -> AnyPath:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry, or None when there is none or it is not one (empty, truncated, not ours)."""
        try:
            value = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
            return None
        if not isinstance(value, dict) or not isinstance(value.get("content"), str):
            return None
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        write_text_atomic(self._path(key), json.dumps(value, ensure_ascii=False))

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.exists() else 0
