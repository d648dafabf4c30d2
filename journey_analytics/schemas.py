"""One pandera model per staged table, each with its grain; validation splits bad rows off.

Every staged table carries the same lineage columns:
`_source_file` (path under the landing folder), `_source_row` (1-based record number in the file:
the data row of a CSV, the line of a JSON-lines file, the element of a JSON array),
`_delivery_date` (the landing folder's date), `_row_key` (the natural key that identifies a
duplicate), and `_dedupe_at` (a source time that decides which copy of a duplicate is kept;
null when the source has none).
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

LINEAGE = {
    "_source_file": pl.String,
    "_source_row": pl.Int64,
    "_delivery_date": pl.Date,
    "_row_key": pl.String,
    "_dedupe_at": pl.Datetime("us"),
}

#: The canonical event layout shared by every event-grained staged table (ActivitySchema-like).
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "event_key": pl.String,
    "source": pl.String,
    "source_format": pl.String,
    "activity": pl.String,
    "channel": pl.String,
    "occurred_at": pl.Datetime("us"),
    "anonymous_id": pl.String,
    "user_id": pl.String,
    "contact_id": pl.String,
    "email_hash": pl.String,
    "phone_hash": pl.String,
    "loyalty_id": pl.String,
    "session_id": pl.String,
    "order_id": pl.String,
    "campaign_source": pl.String,
    "campaign_medium": pl.String,
    "campaign_name": pl.String,
    "campaign_term": pl.String,
    "campaign_content": pl.String,
    "touchpoint_type": pl.String,
    "touchpoint": pl.String,
    "page_url": pl.String,
    "referrer_url": pl.String,
    "revenue": pl.Float64,
    "currency": pl.String,
    "attributes": pl.String,
    **LINEAGE,
}

CONTACT_COLUMNS: dict[str, pl.DataType] = {
    "contact_id": pl.String,
    "email_hash": pl.String,
    "phone_hash": pl.String,
    "user_id": pl.String,
    "loyalty_id": pl.String,
    "lifecycle_stage": pl.String,
    "country": pl.String,
    "created_at": pl.Datetime("us"),
    "updated_at": pl.Datetime("us"),
    "is_deleted": pl.Boolean,
    "attributes": pl.String,
    **LINEAGE,
}

STORE_COLUMNS: dict[str, pl.DataType] = {
    "store_id": pl.String,
    "name": pl.String,
    "region": pl.String,
    "timezone": pl.String,
    "attributes": pl.String,
    **LINEAGE,
}

TRANSACTION_COLUMNS: dict[str, pl.DataType] = {
    "transaction_id": pl.String,
    "line_number": pl.Int64,
    "store_id": pl.String,
    "occurred_at_local": pl.Datetime("us"),
    "timezone": pl.String,
    "loyalty_id": pl.String,
    "email_hash": pl.String,
    "phone_hash": pl.String,
    "sku": pl.String,
    "quantity": pl.Float64,
    "unit_price": pl.Float64,
    "currency": pl.String,
    "transaction_type": pl.String,
    "attributes": pl.String,
    **LINEAGE,
}

VISIT_COLUMNS: dict[str, pl.DataType] = {
    "visit_id": pl.String,
    "store_id": pl.String,
    "occurred_at_local": pl.Datetime("us"),
    "timezone": pl.String,
    "loyalty_id": pl.String,
    "visit_type": pl.String,
    "activity": pl.String,
    "attributes": pl.String,
    **LINEAGE,
}


class _Lineage(pa.DataFrameModel):
    source_file: str = pa.Field(alias="_source_file")
    source_row: int = pa.Field(alias="_source_row", ge=1)
    delivery_date: dt.date = pa.Field(alias="_delivery_date")
    row_key: str = pa.Field(alias="_row_key")
    dedupe_at: dt.datetime = pa.Field(alias="_dedupe_at", nullable=True)

    class Config:
        strict = True


class StagedEvent(_Lineage):
    """One row per customer-facing event of one source, as delivered (before de-duplication)."""

    event_key: str = pa.Field(str_length={"min_value": 3})
    source: str = pa.Field(isin=["web", "email", "crm", "store"])
    source_format: str
    activity: str = pa.Field(str_matches=r"^[a-z][a-z0-9_]*$")
    channel: str
    occurred_at: dt.datetime
    anonymous_id: str = pa.Field(nullable=True)
    user_id: str = pa.Field(nullable=True)
    contact_id: str = pa.Field(nullable=True)
    email_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    phone_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    loyalty_id: str = pa.Field(nullable=True)
    session_id: str = pa.Field(nullable=True)
    order_id: str = pa.Field(nullable=True)
    campaign_source: str = pa.Field(nullable=True)
    campaign_medium: str = pa.Field(nullable=True)
    campaign_name: str = pa.Field(nullable=True)
    campaign_term: str = pa.Field(nullable=True)
    campaign_content: str = pa.Field(nullable=True)
    touchpoint_type: str = pa.Field(nullable=True)
    touchpoint: str = pa.Field(nullable=True)
    page_url: str = pa.Field(nullable=True)
    referrer_url: str = pa.Field(nullable=True)
    revenue: float = pa.Field(nullable=True)
    currency: str = pa.Field(nullable=True, str_matches=r"^[A-Z]{3}$")
    attributes: str


class StagedContact(_Lineage):
    """One row per CRM contact per snapshot file."""

    contact_id: str
    email_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    phone_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    user_id: str = pa.Field(nullable=True)
    loyalty_id: str = pa.Field(nullable=True)
    lifecycle_stage: str = pa.Field(nullable=True)
    country: str = pa.Field(nullable=True)
    created_at: dt.datetime = pa.Field(nullable=True)
    updated_at: dt.datetime = pa.Field(nullable=True)
    is_deleted: bool
    attributes: str


class StagedStore(_Lineage):
    """One row per store per stores file."""

    store_id: str
    name: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)
    timezone: str
    attributes: str


class StagedTransactionLine(_Lineage):
    """One row per receipt line as delivered, in store-local time (converted to UTC downstream)."""

    transaction_id: str
    line_number: int = pa.Field(ge=0)
    store_id: str
    occurred_at_local: dt.datetime
    timezone: str = pa.Field(nullable=True)
    loyalty_id: str = pa.Field(nullable=True)
    email_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    phone_hash: str = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    sku: str = pa.Field(nullable=True)
    quantity: float = pa.Field(nullable=True)
    unit_price: float = pa.Field(nullable=True, ge=0)
    currency: str = pa.Field(nullable=True, str_matches=r"^[A-Z]{3}$")
    transaction_type: str = pa.Field(isin=["sale", "return", "void"])
    attributes: str

    @pa.dataframe_check(name="sale_with_negative_quantity")
    def _sale_quantity(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            ~((pl.col("transaction_type") == "sale") & (pl.col("quantity") < 0)).fill_null(True)
        )


class StagedVisit(_Lineage):
    """One row per in-store visit, trial or event as delivered, in store-local time."""

    visit_id: str
    store_id: str
    occurred_at_local: dt.datetime
    timezone: str = pa.Field(nullable=True)
    loyalty_id: str = pa.Field(nullable=True)
    visit_type: str = pa.Field(str_matches=r"^[a-z][a-z0-9_]*$")
    activity: str = pa.Field(str_matches=r"^[a-z][a-z0-9_]*$")
    attributes: str


#: Dataframe-wide checks: the field they blame, and the reason an analyst reads.
DATAFRAME_CHECK_REASONS = {
    "sale_with_negative_quantity": (
        "quantity",
        "negative quantity on a sale line (a stock adjustment, not a customer purchase; returns "
        "must be marked as returns)",
    ),
}

MODELS: dict[str, type[pa.DataFrameModel]] = {
    "events": StagedEvent,
    "contacts": StagedContact,
    "stores": StagedStore,
    "transactions": StagedTransactionLine,
    "visits": StagedVisit,
}

COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "events": EVENT_COLUMNS,
    "contacts": CONTACT_COLUMNS,
    "stores": STORE_COLUMNS,
    "transactions": TRANSACTION_COLUMNS,
    "visits": VISIT_COLUMNS,
}

QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String,
    "entity": pl.String,
    "_delivery_date": pl.Date,
    "_source_file": pl.String,
    "_source_row": pl.Int64,
    "field": pl.String,
    "reason": pl.String,
    "raw_record": pl.String,
}

LOAD_ERROR_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String,
    "entity": pl.String,
    "_delivery_date": pl.Date,
    "_source_file": pl.String,
    "line": pl.Int64,
    "error": pl.String,
    "message": pl.String,
}

LANDED_FILE_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String,
    "entity": pl.String,
    "source_format": pl.String,
    "_delivery_date": pl.Date,
    "_source_file": pl.String,
    "content_sha256": pl.String,
    "size_bytes": pl.Int64,
    "rows_read": pl.Int64,
    "rows_parsed": pl.Int64,
    "rows_quarantined": pl.Int64,
    "status": pl.String,
}
