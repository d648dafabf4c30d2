import datetime as dt

import polars as pl

from journey_analytics.ingest.canonical import parse_epoch_or_iso, parse_local, parse_utc

TEXT = [
    "2025-03-01T10:00:00+01:00",  # offset applied: 09:00 UTC
    "2025-03-01T10:00:00.250Z",
    " 2025-03-01 10:00:05 ",  # no offset: read as UTC, blanks stripped
    "2025-03-01T10:07",
    "2025-03-01",
    "1740823200",  # Unix seconds: only the epoch reading takes it
    "",
    None,
    "01/03/2025",  # no format reads it
]


def parsed(expr) -> list:
    return pl.DataFrame({"t": TEXT}, schema={"t": pl.String}).select(expr).to_series().to_list()


def test_each_value_takes_the_first_reading_that_fits():
    assert parsed(parse_utc(pl.col("t"))) == [
        dt.datetime(2025, 3, 1, 9, 0),
        dt.datetime(2025, 3, 1, 10, 0, 0, 250000),
        dt.datetime(2025, 3, 1, 10, 0, 5),
        dt.datetime(2025, 3, 1, 10, 7),
        dt.datetime(2025, 3, 1),
        None,
        None,
        None,
        None,
    ]


def test_epoch_seconds_come_before_iso_text():
    out = parsed(parse_epoch_or_iso(pl.col("t")))
    assert out[5] == dt.datetime(2025, 3, 1, 10, 0)  # 1740823200 s after 1970-01-01
    assert out[0] == dt.datetime(2025, 3, 1, 9, 0)
    assert out[6:] == [None, None, None]


def test_local_text_ignores_no_offset_and_keeps_the_wall_clock():
    out = parsed(parse_local(pl.col("t")))
    assert out[0] is None  # an offset is not wall-clock text
    assert out[2:5] == [dt.datetime(2025, 3, 1, 10, 0, 5), dt.datetime(2025, 3, 1, 10, 7), dt.datetime(2025, 3, 1)]
