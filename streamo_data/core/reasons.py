"""Turning many specific error messages into a few countable reasons."""

from __future__ import annotations

import re

from pydantic import ValidationError


def reason_key(message: str) -> str:
    """Group messages that differ only in ids, numbers and quoted text into one reason: summaries
    count reasons, while the full messages stay in the reject files."""
    message = message.removeprefix("Value error, ")
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    message = re.sub(r"\b[0-9a-f]{8,}\b", "…", message)
    message = re.sub(r"\b(sample|video|event|record) [A-Za-z0-9_.\-]*\d[A-Za-z0-9_.\-]*( \([^)]*\))?", r"\1 …", message)
    return re.sub(r"\d+(\.\d+)?", "N", message)


def validation_messages(error: ValidationError) -> list[str]:
    """One readable line per pydantic error, prefixed by the field it concerns (when it is one field)."""
    lines = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return lines
