"""Line-exact CSV reading shared by the import formats: a header, then one validated row a line.

Pure: reads from the binary stream it is given, one line in memory at a time. Each physical
line is decoded and parsed on its own, so an error names its exact line; a quoted field spanning
lines is refused (no field of these formats may hold a newline). Reasons never quote a value.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, TypeVar

T = TypeVar("T")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str  # "" when the whole line is at fault
    reason: str
    raw: bytes


class FileError(Exception):
    """The file as a whole cannot be read (wrong header, empty file)."""


class Invalid(Exception):
    """Raised by a row parser: which column, and why (never the value)."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column, self.reason = column, reason


Row = dict[str, str]


def read_rows(
    stream: BinaryIO,
    columns: tuple[str, ...],
    parse: Callable[[int, bytes, Row], T],
) -> Iterator[T | RowError]:
    """Check the header, then yield ``parse(line, raw, values)`` for each row, or its error."""
    header_raw = stream.readline()
    if not header_raw.strip():
        raise FileError("the file is empty: expected a header row")
    try:
        header = next(csv.reader([header_raw.decode("utf-8-sig").rstrip("\r\n")], strict=True))
    except (UnicodeDecodeError, csv.Error):
        raise FileError("line 1: the header is not a valid UTF-8 CSV row") from None
    if tuple(h.strip() for h in header) != columns:
        raise FileError(
            "line 1: wrong header; expected exactly these columns in this order: "
            + ",".join(columns)
        )
    for number, raw in enumerate(stream, start=2):
        if not raw.strip():
            continue
        try:
            yield parse(number, raw, _fields(raw, columns))
        except Invalid as err:
            yield RowError(number, err.column, err.reason, raw)


def _fields(raw: bytes, columns: tuple[str, ...]) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("", f"not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    complete = raw.endswith(b"\n")
    if not complete and text.count('"') % 2:
        raise Invalid("", "the line ends inside a quoted field (truncated file?)")
    line = text.rstrip("\r\n")
    if '"' in line:
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error:
            raise Invalid("", "not a valid CSV row (unbalanced quotes?)") from None
    else:
        fields = line.split(",")  # what csv would do without quotes, at a fraction of its cost
    if len(fields) != len(columns):
        hint = "" if complete else " (truncated file?)"
        raise Invalid("", f"expected {len(columns)} fields, got {len(fields)}{hint}")
    return dict(zip(columns, (f.strip() for f in fields), strict=True))


def text(values: Row, column: str, max_length: int, required: bool = True) -> str:
    value = values[column]
    if not value:
        if required:
            raise Invalid(column, "is required")
        return value
    if len(value) > max_length:
        raise Invalid(column, f"is longer than {max_length} characters")
    if _CONTROL.search(value):
        raise Invalid(column, "contains a control character")
    return value


def iso_date(values: Row, column: str) -> date:
    value = values[column]
    # fromisoformat alone would also take week dates such as 2025-W01-3.
    if not _ISO_DATE.fullmatch(value):
        raise Invalid(column, "must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(column, "is not a real calendar date (YYYY-MM-DD)") from None


def codes(values: Row, column: str, allowed: frozenset[str]) -> tuple[str, ...]:
    """A ``;``-separated list of codes, each among ``allowed``; sorted, without repeats."""
    items = {c.strip() for c in values[column].split(";") if c.strip()}
    if items - allowed:
        raise Invalid(column, "unknown code; valid codes: " + " ".join(sorted(allowed)))
    return tuple(sorted(items))
