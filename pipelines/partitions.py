"""Daily partitions by delivery date (the landing folder's date)."""

import dagster as dg

from journey_analytics.settings import load_settings

delivery_dates = dg.DailyPartitionsDefinition(
    start_date=load_settings().ingest.delivery_start_date.isoformat(),
    end_offset=1,  # today's delivery folder is a partition too
)
