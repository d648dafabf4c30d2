import datetime as dt

from journey_analytics.warehouse import timezone_periods


def test_london_periods_around_the_2025_changes():
    periods = timezone_periods(["Europe/London"])
    spring = periods.filter(periods["utc_start"] == dt.datetime(2025, 3, 30, 1))
    autumn = periods.filter(periods["utc_start"] == dt.datetime(2025, 10, 26, 1))
    # summer time starts at 01:00 UTC on 30 March (+1 h) and ends at 01:00 UTC on 26 October
    assert spring["utc_offset_seconds"].unique().to_list() == [3600]
    assert spring["local_start"].unique().to_list() == [dt.datetime(2025, 3, 30, 2)]
    assert autumn["utc_offset_seconds"].unique().to_list() == [0]
    assert autumn["local_start"].unique().to_list() == [dt.datetime(2025, 10, 26, 1)]
    # the winter span before spring is stretched over the skipped hour 01:00-02:00 local
    winter = periods.filter(periods["utc_end"] == dt.datetime(2025, 3, 30, 1))
    assert winter["local_end"].unique().to_list() == [dt.datetime(2025, 3, 30, 2)]


def test_a_span_that_crosses_new_year_has_a_row_per_local_year():
    periods = timezone_periods(["Europe/London"])
    winter = periods.filter(periods["utc_start"] == dt.datetime(2024, 10, 27, 1))
    assert sorted(winter["local_year"].to_list()) == [2024, 2025]
