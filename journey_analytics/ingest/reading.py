"""Reading landed files: gzip, text decoding, CSV, JSON arrays and JSON lines.

Errors that stop a whole file (undecodable bytes, a CSV without its required columns) raise
`FileLoadError` naming the line; errors in one record (a broken JSON line, a truncated array
tail) are returned as bad records so that the rest of the file still loads.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass

import orjson
import polars as pl

GZIP_MAGIC = b"\x1f\x8b"


class FileLoadError(Exception):
    """A file that cannot be read at all. `line` is 1-based where known."""

    def __init__(self, error: str, message: str, line: int | None = None):
        super().__init__(message)
        self.error = error
        self.message = message
        self.line = line


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be parsed: its record number, line, reason and raw text."""

    record: int
    line: int
    reason: str
    text: str


def read_bytes(path) -> tuple[bytes, bool]:
    """The file's bytes, decompressed when they are gzip (whatever the name), and whether they were."""
    with open(path, "rb") as fh:
        data = fh.read()
    gzipped = data[:2] == GZIP_MAGIC
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FileLoadError("bad_gzip", f"corrupt or truncated gzip data: {exc}") from exc
    return data, gzipped


def decode(data: bytes, encoding: str = "utf-8") -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileLoadError(
            "undecodable_bytes",
            f"bytes {data[exc.start:exc.end]!r} at line {line}, column {column} are not valid "
            f"{encoding}: {exc.reason}",
            line,
        ) from exc
    return text.removeprefix("\ufeff")


def read_csv(text: str, delimiter: str = ",") -> pl.DataFrame:
    """All columns as strings, with `_source_row` (1-based data row) and `_line` (file line)."""
    if not text.strip():
        return pl.DataFrame({"_source_row": [], "_line": []}, schema={"_source_row": pl.Int64, "_line": pl.Int64})
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            infer_schema=False,
            separator=delimiter,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise FileLoadError("malformed_csv", f"CSV could not be parsed: {exc}") from exc
    frame = frame.rename({c: c.strip() for c in frame.columns})
    # Empty strings and whitespace-only fields are missing values.
    frame = frame.with_columns(
        pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c).str.strip_chars()).alias(c)
        for c in frame.columns
    )
    n = frame.height
    return frame.with_columns(
        pl.int_range(1, n + 1, dtype=pl.Int64).alias("_source_row"),
        # The header is line 1; records holding quoted newlines shift this, so `_line` is the
        # record's line for the common case and `_source_row` is exact.
        pl.int_range(2, n + 2, dtype=pl.Int64).alias("_line"),
    )


def require_columns(frame: pl.DataFrame, required: list[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FileLoadError(
            "missing_columns",
            f"required column(s) {', '.join(missing)} missing from the header (line 1); "
            f"found: {', '.join(c for c in frame.columns if not c.startswith('_'))}",
            1,
        )


class _LineCounter:
    """Line numbers of increasing offsets in a text, counting each newline once."""

    def __init__(self, text: str):
        self.text, self.offset, self.line = text, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def read_json_records(text: str) -> tuple[list[tuple[int, int, dict]], list[BadRecord], list[FileLoadError]]:
    """Records of a JSON array file or a JSON-lines file.

    Returns the good records [(record_no, line, object)], the bad records, and file-level notes
    (an array that is never closed). Arrays are decoded element by element, so a truncated file
    keeps the elements before the break; each JSON-lines line is decoded on its own.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _read_json_array(text)
    good: list[tuple[int, int, dict]] = []
    bad: list[BadRecord] = []
    record = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append(BadRecord(record, line_no, f"invalid JSON at line {line_no}: {exc}", line))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRecord(record, line_no, f"line {line_no} holds a JSON {type(obj).__name__}, not an object", line))
            continue
        good.append((record, line_no, obj))
    return good, bad, []


def _read_json_array(text: str) -> tuple[list[tuple[int, int, dict]], list[BadRecord], list[FileLoadError]]:
    decoder = json.JSONDecoder()
    _line_of = _LineCounter(text)
    good: list[tuple[int, int, dict]] = []
    bad: list[BadRecord] = []
    pos = text.index("[") + 1
    record = 0
    n = len(text)

    def skip_ws(p: int) -> int:
        while p < n and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip_ws(pos)
    if pos < n and text[pos] == "]":
        return good, bad, []
    while pos < n:
        record += 1
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            line = _line_of(pos)
            bad.append(
                BadRecord(record, line, f"invalid JSON from line {line} (element {record}): {exc.msg} at line {exc.lineno} column {exc.colno}; the rest of the array is unreadable", text[pos : pos + 2000])
            )
            kind = "malformed_json" if text.rstrip().endswith("]") else "truncated_json"  # an array never closed was cut off
            return good, bad, [FileLoadError(
                kind, f"invalid JSON in array element {record} starting at line {line} ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                f"the {record - 1} element(s) before it were loaded, anything after it could not be read", line)]
        line = _line_of(pos)
        if isinstance(obj, dict):
            good.append((record, line, obj))
        else:
            bad.append(BadRecord(record, line, f"array element {record} at line {line} is a JSON {type(obj).__name__}, not an object", json.dumps(obj)[:2000]))
        pos = skip_ws(end)
        if pos < n and text[pos] == ",":
            pos = skip_ws(pos + 1)
        elif pos < n and text[pos] == "]":
            return good, bad, []
        else:
            line = _line_of(pos)
            bad.append(BadRecord(record + 1, line, f"expected ',' or ']' after element {record} at line {line}", text[pos : pos + 2000]))
            return good, bad, [FileLoadError(
                "malformed_json", f"expected ',' or ']' after array element {record} at line {line}: anything after it could not be read", line)]
    note = FileLoadError(
        "truncated_json", f"JSON array not closed after element {record}: the file looks truncated; any elements after it are missing", _line_of(n)
    )
    return good, bad, [note]


def flatten(obj: dict, prefix: str = "") -> dict:
    """Nested JSON objects to dotted keys (`context.page.url`); lists are kept as JSON text."""
    out: dict = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = orjson.dumps(value).decode()
        elif value is None:
            out[name] = None
        else:
            out[name] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out
