"""Finds cointoss's events in whatever an operator pulled out of the logs, and shrugs at the rest.

Three shapes arrive in practice: the JSON lines cointoss writes on stderr, the JSON document that
`aws logs filter-log-events` prints (the lines are its `events[].message`; several pages may be
concatenated), and a CloudWatch Logs Insights CSV export (an `@message` column holding the line,
or one column per field with an `event` column). Anything else is one "not cointoss" entry per
line, message or row: counted by the caller, never an error.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

Event = dict[str, Any]
Entry = Event | None  # None: a line, message or row that is not a cointoss event

_JSON_BLANK = re.compile(r"[ \t\r\n]*")
_CSV_COLUMN = re.compile(r"@?[A-Za-z_][A-Za-z0-9_.@-]*")
_MESSAGE_COLUMNS = ("@message", "message")
_BOM = "\ufeff"


def iter_entries(text: str) -> Iterator[Entry]:
    """One entry per log line (or message, or CSV row): the event dict, or None if not ours."""
    text = text.removeprefix(_BOM)
    header = _csv_header(text)
    if header is not None:
        yield from _csv_entries(text, header)
    else:
        yield from _json_entries(text)


def _json_entries(text: str) -> Iterator[Entry]:
    """JSON lines and pretty-printed JSON documents alike; a line that does not decode is not ours."""
    decoder = json.JSONDecoder()
    position, size = 0, len(text)
    while True:
        position = _JSON_BLANK.match(text, position).end()  # type: ignore[union-attr]
        if position >= size:
            return
        line_end = _line_end(text, position)
        if text[position] in "{[":
            try:
                document, stop = decoder.raw_decode(text, position)
            except (ValueError, RecursionError):
                document, stop = None, -1
            if stop > 0 and not text[stop : _line_end(text, stop)].strip():
                yield from _entries_of(document)
                position = _line_end(text, stop) + 1
                continue
        yield None
        position = line_end + 1


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _entries_of(document: Any) -> Iterator[Entry]:
    """A decoded JSON value: an event, a filter-log-events page, or an array of records."""
    if isinstance(document, dict) and "event" not in document and "events" in document:
        pages = document["events"]
        yield from (_from_record(item) for item in (pages if isinstance(pages, list) else [None]))
    elif isinstance(document, list):
        yield from (_from_record(item) for item in document)
    else:
        yield _from_record(document)


def _from_record(record: Any) -> Entry:
    """A cointoss event as written, or the log line wrapped in `message` / `@message`."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("event"), str):
        return record
    for column in _MESSAGE_COLUMNS:
        if isinstance(record.get(column), str):
            return _from_message(record[column])
    return None


def _from_message(message: str) -> Entry:
    message = message.strip()
    if not message.startswith("{"):
        return None
    try:
        document = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return (
        document if isinstance(document, dict) and isinstance(document.get("event"), str) else None
    )


def _csv_header(text: str) -> list[str] | None:
    """The column names if `text` starts like a Logs Insights CSV export, else None."""
    first = text.lstrip().split("\n", 1)[0].strip()
    if not first or first[0] in "{[":
        return None
    try:
        columns = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    if not all(_CSV_COLUMN.fullmatch(column) for column in columns):
        return None
    return columns if {"@message", "event"} & set(columns) else None


def _csv_entries(text: str, header: list[str]) -> Iterator[Entry]:
    rows = csv.reader(io.StringIO(text.lstrip()))
    next(rows, None)  # the header, already read
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error:  # an oversized or broken field: that row is not ours, go on
            yield None
            continue
        if row:
            yield _from_row(dict(zip(header, row, strict=False)))


def _from_row(row: dict[str, str]) -> Entry:
    """`@message` holds the whole line; otherwise the columns are the event's fields."""
    if "@message" in row:
        return _from_message(row["@message"])
    fields = {name: value for name, value in row.items() if value != ""}
    return fields if fields.get("event") else None
