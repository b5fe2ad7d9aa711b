"""Reading a raw annotation file record by record, so that memory stays flat in the record count.

The reference converter reads the whole file with ``json.load`` (UTF-8, no byte-order mark) and accepts a
JSON list of records or a single record object. We accept the same, plus JSON Lines (one object a line,
our own layout), and read it incrementally with ``json.JSONDecoder.raw_decode`` over a sliding buffer,
which parses exactly what ``json.load`` parses (NaN and Infinity included). A file that cannot be read
at all raises :class:`RawInputError` with one line naming the file, the place and the reason (JSON nested
deeper than Python's stack and an integer too long for ``int()`` included, which json itself reports
without either).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from streamo_data.core.errors import UserError
from streamo_data.store.io import json_limit_reason, long_number_at
from streamo_data.store.storage import AnyPath

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what json.load skips: JSON's own whitespace, nothing else
_BLOCK = 1 << 20


class RawInputError(UserError):
    """The raw file as a whole is unreadable (not UTF-8, not JSON, not records): nothing can be converted.
    A UserError (so also a ValueError), so a command that does not catch it still shows one line."""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


class _Buffer:
    """Decoded text of the file, read block by block; ``text[pos:]`` is what is left to parse."""

    def __init__(self, path: AnyPath, handle: IO[bytes]) -> None:
        self.path, self.handle = path, handle
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text, self.pos, self.eof = "", 0, False
        self.bytes_read, self.lines_before = 0, 0

    def more(self) -> bool:
        """Read one more block; False at the end of the file."""
        if self.eof:
            return False
        block = self.handle.read(_BLOCK)
        try:
            decoded = self.decoder.decode(block, final=not block)
        except UnicodeDecodeError as error:
            offset = self.bytes_read + error.start
            raise RawInputError(
                f"{self.path}: not UTF-8 (byte 0x{error.object[error.start]:02x} at offset {offset}, e.g. Latin-1);"
                " re-save it as UTF-8") from error
        self.bytes_read += len(block)
        self.eof = not block
        if self.pos > _BLOCK:  # forget what is parsed, so the buffer stays about one block long
            self.lines_before += self.text.count("\n", 0, self.pos)
            self.text, self.pos = self.text[self.pos:], 0
        self.text += decoded
        return True

    def skip_whitespace(self) -> str:
        """The next significant character ('' at the end of the file), with ``pos`` on it."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # [...]* always matches
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos:self.pos + 1]

    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        line = self.lines_before + self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"line {line} column {column}"

    def fail(self, reason: str, pos: int | None = None) -> RawInputError:
        return RawInputError(f"{self.path}: not valid JSON: {reason} at {self.where(pos)}")

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the value at ``pos``, reading more until it is complete (a number cut at the end of a
        block would decode, wrongly, so a value that reaches the end of the buffer is decoded again)."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as error:
                if self.more():
                    continue
                raise self.fail(error.msg, error.pos) from error
            except (RecursionError, ValueError) as error:  # valid JSON that Python cannot hold: the file stops
                reason = json_limit_reason(error)
                if reason is None:
                    raise
                at = long_number_at(self.text, self.pos) if isinstance(error, ValueError) else None
                raise RawInputError(f"{self.path}: {reason} (at {self.where(self.pos if at is None else at)})"
                                    ) from error
            if end == len(self.text) and self.more():
                continue
            self.pos = end
            return value


@dataclass
class RawFile:
    """The records of a raw file, read lazily; ``single`` is True for a file holding one bare object,
    which the reference writes back as one object rather than a list."""

    path: AnyPath
    single: bool
    records: Iterator[Any]


def open_raw_records(path: AnyPath) -> RawFile:
    """Check the start of ``path`` and return its records as an iterator (errors raise RawInputError, the
    ones found later in the file as the iterator reaches them)."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise RawInputError(f"{path}: cannot open: {error.strerror}") from error
    if handle.read(3) == codecs.BOM_UTF8:
        handle.close()
        raise RawInputError(f"{path}: starts with a UTF-8 byte-order mark, which the reference converter "
                            "rejects; re-save it as UTF-8 without BOM")
    handle.seek(0)
    buffer = _Buffer(path, handle)
    decoder = json.JSONDecoder()
    first = buffer.skip_whitespace()
    if first == "[":
        buffer.pos += 1
        return RawFile(path, False, _closing(handle, _list_items(buffer, decoder)))
    if first == "":
        handle.close()
        raise RawInputError(f"{path}: empty file, expected a JSON list of records")
    if first != "{":
        value = buffer.value(decoder)
        handle.close()
        raise RawInputError(f"{path}: the top level is {_kind(value)}, expected a JSON list of records")
    head = buffer.value(decoder)
    if buffer.skip_whitespace() == "":
        handle.close()
        return RawFile(path, True, iter([head]))
    return RawFile(path, False, _closing(handle, _json_lines(buffer, decoder, head)))


def _closing(handle: IO[bytes], items: Iterator[Any]) -> Iterator[Any]:
    with handle:
        yield from items


def _list_items(buffer: _Buffer, decoder: json.JSONDecoder) -> Iterator[Any]:
    if buffer.skip_whitespace() == "]":
        buffer.pos += 1
    else:
        while True:
            if buffer.skip_whitespace() == "":
                raise buffer.fail("the list is not closed")
            yield buffer.value(decoder)
            separator = buffer.skip_whitespace()
            buffer.pos += 1
            if separator == "]":
                break
            if separator != ",":
                raise buffer.fail("expected ',' or ']' between records", buffer.pos - 1)
    if buffer.skip_whitespace() != "":
        raise buffer.fail("extra data after the list")


def _json_lines(buffer: _Buffer, decoder: json.JSONDecoder, head: Any) -> Iterator[Any]:
    yield head
    while buffer.skip_whitespace() != "":
        if buffer.text[buffer.pos] != "{":
            raise buffer.fail("extra data after the first object (JSON Lines hold one object a line)")
        yield buffer.value(decoder)
