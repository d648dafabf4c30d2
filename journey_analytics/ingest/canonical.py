"""Turning each source's records into the staged layouts (schemas.py), vectorised with polars.

Every function here takes an input frame of strings (one row per input record, with
`_source_row`) and returns a `Canonical`: the staged columns, plus `_problem_field` and
`_problem` for rows the function already knows are bad (an unknown event type, say), and
`origins`, which names the input column each staged field came from, so that a rejected row's
reason can quote the value the user sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import polars as pl

from journey_analytics import privacy
from journey_analytics.channels import canonical_channel, url_param
from journey_analytics.schemas import COLUMNS
from journey_analytics.settings import Settings


@dataclass(frozen=True)
class ReadContext:
    """What the files of one batch share (their paths and delivery dates are columns of the
    input frame: `_source_file`, `_delivery_date`)."""

    source: str
    entity: str
    kind: str  # the staged layout: events, contacts, stores, transactions, visits
    source_format: str
    settings: Settings
    #: strptime format for timestamps that are not ISO-8601 (from a mapping), else None
    timestamp_format: str | None = None


@dataclass
class Canonical:
    frame: pl.DataFrame
    #: staged field -> (input column, what it should parse as)
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)


# --- small expression helpers -------------------------------------------------------------

NAIVE_FORMATS = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
]


def col(frame: pl.DataFrame, name: str) -> pl.Expr:
    """An input column, or nulls when the file does not have it."""
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String)


def text(expr: pl.Expr) -> pl.Expr:
    expr = expr.cast(pl.String).str.strip_chars()
    return pl.when(expr == "").then(None).otherwise(expr)


#: (format, time zone of the text) tried in turn on ISO-8601 text: an offset is applied, text without one is UTC
UTC_ATTEMPTS = [("%+", "UTC"), *[(f, None) for f in NAIVE_FORMATS]]
#: Unix seconds (SendGrid) first, then ISO-8601 text
EPOCH_ATTEMPTS = [("epoch", None), *UTC_ATTEMPTS]


def _first_parsed(values: pl.Series, attempts: list[tuple[str, str | None]]) -> pl.Series:
    """Each value read by the first attempt (format, time zone) that reads it, as a naive UTC or
    wall-clock timestamp. A later attempt sees only the values still unread, and none runs once
    every value is read, so a well-formed column is parsed once (an expression per format would
    parse the whole column again for each)."""
    out = pl.Series(values.name, [None] * len(values), pl.Datetime("us"))
    for fmt, tz in attempts:
        todo = values.to_frame("v").select(pl.when(out.is_null()).then(pl.col("v"))).to_series()
        if todo.null_count() == len(todo):
            break
        if fmt == "epoch":
            seconds = todo.cast(pl.Float64, strict=False)
            parsed = (seconds * 1_000_000).cast(pl.Int64, strict=False).cast(pl.Datetime("us"))
        else:
            parsed = todo.str.to_datetime(fmt, strict=False, time_unit="us", time_zone=tz)
            if tz is not None:
                parsed = parsed.dt.replace_time_zone(None)
        out = out.to_frame("o").select(pl.coalesce(pl.col("o"), parsed)).to_series().alias(values.name)
    return out


def _parsed(expr: pl.Expr, attempts: list[tuple[str, str | None]]) -> pl.Expr:
    return text(expr).map_batches(lambda values: _first_parsed(values, attempts), return_dtype=pl.Datetime("us"), is_elementwise=True)


def parse_utc(expr: pl.Expr, fmt: str | None = None) -> pl.Expr:
    """ISO-8601 text to a naive UTC timestamp. An offset is applied; text without one is UTC."""
    if fmt:
        return text(expr).str.to_datetime(fmt, strict=False, time_unit="us")
    return _parsed(expr, UTC_ATTEMPTS)


def parse_local(expr: pl.Expr, fmt: str | None = None) -> pl.Expr:
    """Wall-clock text with no offset (store-local time)."""
    if fmt:
        return text(expr).str.to_datetime(fmt, strict=False, time_unit="us")
    return _parsed(expr, [(f, None) for f in NAIVE_FORMATS])


def parse_epoch_or_iso(expr: pl.Expr) -> pl.Expr:
    """Unix seconds (SendGrid) or ISO-8601 text."""
    return _parsed(expr, EPOCH_ATTEMPTS)


def number(expr: pl.Expr) -> pl.Expr:
    return text(expr).cast(pl.Float64, strict=False)


def integer(expr: pl.Expr) -> pl.Expr:
    f = number(expr)
    return pl.when(f == f.round(0)).then(f.cast(pl.Int64, strict=False)).otherwise(None)


def boolean(expr: pl.Expr) -> pl.Expr:
    v = text(expr).str.to_lowercase()
    return (
        pl.when(v.is_in(["true", "t", "1", "yes", "y"]))
        .then(True)
        .when(v.is_in(["false", "f", "0", "no", "n"]) | v.is_null())
        .then(False)
        .otherwise(None)
    )


def snake(expr: pl.Expr) -> pl.Expr:
    """`Newsletter Subscribed` -> `newsletter_subscribed`."""
    return (
        expr.str.replace_all(r"([a-z0-9])([A-Z])", "${1}_${2}")
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
        .str.replace(r"^([0-9])", "n${1}")
    )


def mapped(expr: pl.Expr, mapping: dict[str, str], fallback: pl.Expr | None) -> pl.Expr:
    out = expr.replace_strict(mapping, default=None, return_dtype=pl.String)
    return out if fallback is None else pl.coalesce(out, fallback)


def json_object(frame: pl.DataFrame, columns: list[str], numeric: tuple[str, ...] = ()) -> pl.Expr:
    """A JSON object of the non-null values of `columns` (keys in the order given)."""
    parts = []
    for c in columns:
        if c not in frame.columns:
            continue
        value = number(pl.col(c)) if c in numeric else pl.col(c)
        encoded = pl.struct(value.alias(c)).struct.json_encode()
        parts.append(pl.when(pl.col(c).is_not_null()).then(encoded.str.slice(1, encoded.str.len_chars() - 2)))
    if not parts:
        return pl.lit("{}")
    return pl.concat_str([pl.lit("{"), pl.concat_str(parts, separator=",", ignore_nulls=True), pl.lit("}")])


#: the staged columns a web event's channel is classified from
CHANNEL_INPUTS = ["campaign_medium", "campaign_source", "page_url", "referrer_url"]


def on_distinct(frame: pl.DataFrame, inputs: list[str], exprs: list[pl.Expr]) -> pl.DataFrame:
    """Adds `exprs` (functions of `inputs` alone) computed once per distinct combination of the
    inputs: URLs, names and tags repeat a lot, and the regular expressions are the costly part."""
    keys = frame.select(inputs).unique()
    # lazily, so that polars computes a part the expressions share (a URL's host, a pattern match)
    # once: an eager with_columns computes it again for each expression and branch that reads it
    keys = keys.lazy().with_columns(exprs).collect()
    return frame.join(keys, on=inputs, how="left", nulls_equal=True, maintain_order="left")


def problem(*conditions: tuple[pl.Expr, str, pl.Expr | str]) -> list[pl.Expr]:
    """`_problem_field`, `_problem` from (condition, field, reason) triples; first match wins."""
    field_expr = pl.lit(None, pl.String)
    reason_expr = pl.lit(None, pl.String)
    for cond, fld, reason in reversed(conditions):
        reason = pl.lit(reason) if isinstance(reason, str) else reason
        field_expr = pl.when(cond.fill_null(False)).then(pl.lit(fld)).otherwise(field_expr)
        reason_expr = pl.when(cond.fill_null(False)).then(reason).otherwise(reason_expr)
    return [field_expr.alias("_problem_field"), reason_expr.alias("_problem")]


def lineage(ctx: ReadContext, row_key: pl.Expr, dedupe_at: pl.Expr | None = None) -> list[pl.Expr]:
    return [
        pl.col("_source_file").cast(pl.String),
        pl.col("_source_row").cast(pl.Int64),
        pl.col("_delivery_date").cast(pl.Date),
        row_key.alias("_row_key"),
        (dedupe_at if dedupe_at is not None else pl.lit(None, pl.Datetime("us"))).alias("_dedupe_at"),
    ]


def finish(out: pl.DataFrame, kind: str, origins: dict) -> Canonical:
    if "_problem" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("_problem_field"), pl.lit(None, pl.String).alias("_problem"))
    keep = list(COLUMNS[kind]) + ["_problem_field", "_problem"] + (["_raw"] if "_raw" in out.columns else [])
    out = out.select(keep).with_columns(
        pl.col(c).cast(t) for c, t in COLUMNS[kind].items()
    )
    return Canonical(out, origins)


def hashed_identifiers(frame: pl.DataFrame, ctx: ReadContext, email_col: str, phone_col: str) -> pl.DataFrame:
    """Adds `email_hash`, `phone_hash`, `_invalid_email`, `_invalid_phone`; drops nothing."""
    salt = ctx.settings.hash_salt
    email = frame[email_col] if email_col in frame.columns else pl.Series(email_col, [None] * frame.height, pl.String)
    phone = frame[phone_col] if phone_col in frame.columns else pl.Series(phone_col, [None] * frame.height, pl.String)
    email_hash, bad_email = privacy.email_hashes(email.cast(pl.String), salt)
    phone_hash, bad_phone = privacy.phone_hashes(phone.cast(pl.String), salt, ctx.settings.ingest.phone_default_country)
    return frame.with_columns(
        email_hash.alias("email_hash"),
        phone_hash.alias("phone_hash"),
        bad_email.alias("_invalid_email"),
        bad_phone.alias("_invalid_phone"),
    )


def with_flags(attributes: pl.Expr) -> pl.Expr:
    """Adds `"invalid_email":true` / `"invalid_phone":true` to an attributes object where flagged."""
    flags = pl.concat_str(
        [
            pl.when(pl.col("_invalid_email")).then(pl.lit('"invalid_email":true')),
            pl.when(pl.col("_invalid_phone")).then(pl.lit('"invalid_phone":true')),
        ],
        separator=",",
        ignore_nulls=True,
    )
    return (
        pl.when(flags == "")
        .then(attributes)
        .when(attributes == "{}")
        .then(pl.concat_str([pl.lit("{"), flags, pl.lit("}")]))
        .otherwise(pl.concat_str([attributes.str.strip_suffix("}"), pl.lit(","), flags, pl.lit("}")]))
    )


def page_fields(frame: pl.DataFrame, settings, page_url: str, page_path: str, tagged: dict[str, str]) -> pl.DataFrame:
    """Adds contact_id (the CRM contact parameter on the landing URL), campaign_* (explicit
    campaign columns, else utm_* parameters on the URL) and touchpoint (the path), computed once
    per distinct page and tags."""
    inputs = {"_page_url": text(col(frame, page_url)), "_page_path": text(col(frame, page_path))}
    inputs |= {f"_tag_{name}": text(col(frame, column)) for name, column in tagged.items()}
    url = pl.col("_page_url")
    exprs = [text(url_param(url, settings.contact_id_param)).alias("contact_id")]
    for name in ("source", "medium", "name", "term", "content"):
        from_url = url_param(url, f"utm_{'campaign' if name == 'name' else name}").str.replace_all(r"\+|%20", " ")
        exprs.append(pl.coalesce(pl.col(f"_tag_{name}"), text(from_url)).alias(f"campaign_{name}"))
    exprs.append(pl.coalesce(pl.col("_page_path"), url.str.extract(r"^[a-zA-Z]+://[^/?#]*([^?#]*)", 1)).alias("touchpoint"))
    return on_distinct(frame.with_columns(**inputs), list(inputs), exprs).drop(list(inputs))


# --- web: Segment / RudderStack --------------------------------------------------------------

#: the input columns a Segment message is read into (a web mapping targets these names)
SEGMENT_INPUTS = [
    "messageId", "type", "event", "timestamp", "anonymousId", "previousId", "userId", "page_url", "page_path", "referrer",
    "campaign.source", "campaign.medium", "campaign.name", "campaign.term", "campaign.content", "order_id",
    "revenue", "total", "currency", "session_id", "email", "phone",
]
#: the SendGrid fields we read (an email mapping targets these names)
SENDGRID_INPUTS = ["email", "timestamp", "event", "sg_event_id", "sg_message_id", "url", "category"]

SEGMENT_TYPES = {
    "page": "viewed_page",
    "screen": "viewed_screen",
    "identify": "identified_user",
    "alias": "aliased_user",
    "group": "joined_group",
}


def segment_events(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    s = ctx.settings.web
    frame = hashed_identifiers(frame, ctx, "email", "phone").with_columns(
        text(col(frame, "type")).str.to_lowercase().alias("_msg_type"),
        text(col(frame, "event")).alias("_event_name"),
    )
    msg_type, event_name = pl.col("_msg_type"), pl.col("_event_name")
    # computed once here: the expressions below read it several times, and eager polars would
    # compute it (and its regular expressions) again for each
    frame = frame.with_columns(
        pl.when(msg_type == "track")
        .then(mapped(event_name, s.track_activities, snake(event_name)))
        .otherwise(msg_type.replace_strict(SEGMENT_TYPES, default=None, return_dtype=pl.String))
        .alias("_activity")
    )
    activity = pl.col("_activity")
    page_url = text(col(frame, "page_url"))
    referrer = text(col(frame, "referrer"))
    tagged = {n: f"campaign.{n}" for n in ("source", "medium", "name", "term", "content")}
    total = pl.coalesce(number(col(frame, "revenue")), number(col(frame, "total")))
    revenue = (
        pl.when(activity == "completed_order").then(total).when(activity == "refunded_order").then(-total.abs()).otherwise(None)
    )
    message_id = text(col(frame, "messageId"))
    exprs = [
        pl.concat_str([pl.lit("web:"), message_id]).alias("event_key"),
        pl.lit("web").alias("source"),
        pl.lit(ctx.source_format).alias("source_format"),
        activity.alias("activity"),
        parse_utc(col(frame, "timestamp"), ctx.timestamp_format).alias("occurred_at"),
        # alias: previousId is the earlier (anonymous) id being merged into userId (docs/identity.md)
        pl.when(msg_type == "alias").then(pl.coalesce(text(col(frame, "previousId")), text(col(frame, "anonymousId"))))
        .otherwise(text(col(frame, "anonymousId"))).alias("anonymous_id"),
        text(col(frame, "userId")).alias("user_id"),
        pl.lit(None, pl.String).alias("loyalty_id"),
        text(col(frame, "session_id")).alias("session_id"),
        text(col(frame, "order_id")).alias("order_id"),
        pl.when(page_url.is_not_null() | text(col(frame, "page_path")).is_not_null()).then(pl.lit("page")).alias("touchpoint_type"),
        page_url.alias("page_url"),
        referrer.alias("referrer_url"),
        revenue.alias("revenue"),
        text(col(frame, "currency")).str.to_uppercase().alias("currency"),
        with_flags(col(frame, "attributes") if "attributes" in frame.columns else json_object(frame, extras(frame, SEGMENT_INPUTS))).alias("attributes"),
        *lineage(ctx, pl.concat_str([pl.lit("web:"), message_id])),
        *problem(
            (message_id.is_null(), "messageId", "missing messageId"),
            (msg_type.is_null(), "type", "missing type"),
            (
                activity.is_null() & (msg_type != "track"),
                "type",
                pl.format("unknown Segment message type '{}'", msg_type),
            ),
            ((msg_type == "track") & event_name.is_null(), "event", "track message without an event name"),
            (
                text(col(frame, "anonymousId")).is_null() & text(col(frame, "userId")).is_null(),
                "anonymousId",
                "neither anonymousId nor userId is set",
            ),
        ),
    ]
    frame = page_fields(frame, s, "page_url", "page_path", tagged).with_columns(exprs)
    frame = on_distinct(frame, CHANNEL_INPUTS, [canonical_channel(s)])
    return finish(frame, "events", {"occurred_at": ("timestamp", "timestamp"), "revenue": ("properties.revenue", "number")})


# --- web: Snowplow enriched events -------------------------------------------------------------

SNOWPLOW_USED = {
    "event_id", "collector_tstamp", "derived_tstamp", "dvce_created_tstamp", "domain_userid", "user_id",
    "domain_sessionid", "event", "event_name", "page_url", "page_urlpath", "page_referrer", "refr_medium",
    "mkt_medium", "mkt_source", "mkt_campaign", "mkt_term", "mkt_content", "tr_orderid", "tr_total",
    "tr_currency", "se_action",
}


def snowplow_events(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    s = ctx.settings.web
    name = pl.coalesce(
        pl.when(text(col(frame, "event")) == "struct").then(text(col(frame, "se_action"))),
        text(col(frame, "event_name")),
        text(col(frame, "event")),
    )
    page_url = text(col(frame, "page_url"))
    event_id = text(col(frame, "event_id"))
    occurred_at = pl.coalesce(
        parse_utc(col(frame, "derived_tstamp")),
        parse_utc(col(frame, "collector_tstamp")),
        parse_utc(col(frame, "dvce_created_tstamp")),
    )
    activity = mapped(name, s.snowplow_activities, snake(name))
    extra = [c for c in frame.columns if not c.startswith("_") and c not in SNOWPLOW_USED]
    tagged = {"source": "mkt_source", "medium": "mkt_medium", "name": "mkt_campaign", "term": "mkt_term", "content": "mkt_content"}
    frame = page_fields(frame, s, "page_url", "page_urlpath", tagged).with_columns(
        pl.concat_str([pl.lit("web:"), event_id]).alias("event_key"),
        pl.lit("web").alias("source"),
        pl.lit(ctx.source_format).alias("source_format"),
        activity.alias("activity"),
        occurred_at.alias("occurred_at"),
        text(col(frame, "domain_userid")).alias("anonymous_id"),
        text(col(frame, "user_id")).alias("user_id"),
        pl.lit(None, pl.String).alias("email_hash"),
        pl.lit(None, pl.String).alias("phone_hash"),
        pl.lit(None, pl.String).alias("loyalty_id"),
        text(col(frame, "domain_sessionid")).alias("session_id"),
        text(col(frame, "tr_orderid")).alias("order_id"),
        pl.when(page_url.is_not_null()).then(pl.lit("page")).alias("touchpoint_type"),
        page_url.alias("page_url"),
        text(col(frame, "page_referrer")).alias("referrer_url"),
        pl.when(activity == "completed_order").then(number(col(frame, "tr_total"))).alias("revenue"),
        text(col(frame, "tr_currency")).str.to_uppercase().alias("currency"),
        json_object(frame, ["event", "event_name", *extra]).alias("attributes"),
        *lineage(ctx, pl.concat_str([pl.lit("web:"), event_id]), parse_utc(col(frame, "collector_tstamp"))),
        *problem(
            (event_id.is_null(), "event_id", "missing event_id"),
            (name.is_null(), "event", "missing event and event_name"),
            (occurred_at.is_null() & text(col(frame, "derived_tstamp")).is_null() & text(col(frame, "collector_tstamp")).is_null(),
             "derived_tstamp", "missing derived_tstamp and collector_tstamp"),
        ),
    )
    frame = frame.with_columns(text(col(frame, "refr_medium")).alias("_refr_medium"))
    frame = on_distinct(frame, [*CHANNEL_INPUTS, "_refr_medium"], [canonical_channel(s, referrer_medium=pl.col("_refr_medium"))])
    origins = {"occurred_at": ("derived_tstamp", "timestamp"), "revenue": ("tr_total", "number")}
    return finish(frame, "events", origins)


# --- email: SendGrid ----------------------------------------------------------------------------


def sendgrid_events(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    s = ctx.settings.email
    frame = hashed_identifiers(frame, ctx, "email", "_no_phone")
    kind = text(col(frame, "event")).str.to_lowercase()
    activity = kind.replace_strict(s.activities, default=None, return_dtype=pl.String)
    sg_id = text(col(frame, "sg_event_id"))
    campaign = pl.coalesce(*[text(col(frame, c)) for c in s.campaign_fields]) if s.campaign_fields else pl.lit(None, pl.String)
    category = text(col(frame, "category"))
    first_category = pl.coalesce(category.str.json_path_match("$[0]"), category)
    frame = frame.with_columns(
        pl.concat_str([pl.lit("email:"), sg_id]).alias("event_key"),
        pl.lit("email").alias("source"),
        pl.lit(ctx.source_format).alias("source_format"),
        activity.alias("activity"),
        pl.lit("email").alias("channel"),
        parse_epoch_or_iso(col(frame, "timestamp")).alias("occurred_at"),
        pl.lit(None, pl.String).alias("anonymous_id"),
        pl.lit(None, pl.String).alias("user_id"),
        (pl.coalesce(*[text(col(frame, c)) for c in s.contact_id_fields]) if s.contact_id_fields else pl.lit(None, pl.String)).alias("contact_id"),
        pl.lit(None, pl.String).alias("loyalty_id"),
        pl.lit(None, pl.String).alias("session_id"),
        pl.lit(None, pl.String).alias("order_id"),
        pl.lit("sendgrid").alias("campaign_source"),
        pl.lit("email").alias("campaign_medium"),
        campaign.alias("campaign_name"),
        pl.lit(None, pl.String).alias("campaign_term"),
        pl.lit(None, pl.String).alias("campaign_content"),
        pl.lit("email_campaign").alias("touchpoint_type"),
        pl.coalesce(campaign, first_category, text(col(frame, "sg_message_id"))).alias("touchpoint"),
        text(col(frame, "url")).alias("page_url"),
        pl.lit(None, pl.String).alias("referrer_url"),
        pl.lit(None, pl.Float64).alias("revenue"),
        pl.lit(None, pl.String).alias("currency"),
        (col(frame, "attributes") if "attributes" in frame.columns else json_object(frame, extras(frame, SENDGRID_INPUTS))).alias("attributes"),
        *lineage(ctx, pl.concat_str([pl.lit("email:"), sg_id])),
        *problem(
            (sg_id.is_null(), "sg_event_id", "missing sg_event_id"),
            (kind.is_null(), "event", "missing event"),
            (activity.is_null(), "event", pl.format("unknown SendGrid event '{}' (map it under [email.activities] in journey.toml)", kind)),
            (text(col(frame, "email")).is_null(), "email", "missing email"),
            (pl.col("_invalid_email"), "email", "email is not a valid address"),
        ),
    )
    return finish(frame, "events", {"occurred_at": ("timestamp", "timestamp")})


# --- crm ----------------------------------------------------------------------------------------

CRM_ACTIVITY_INPUTS = ["activity_id", "contact_id", "activity_type", "occurred_at", "channel", "outcome", "score", "subject"]
CRM_DEAL_INPUTS = ["deal_id", "contact_id", "stage", "amount", "currency", "changed_at"]
CONTACT_INPUTS = [
    "contact_id", "email", "phone", "user_id", "loyalty_id", "lifecycle_stage", "country", "created_at", "updated_at", "is_deleted",
]


def extras(frame: pl.DataFrame, known: list[str]) -> list[str]:
    return [c for c in frame.columns if not c.startswith("_") and c not in known]


def _crm_event_base(ctx: ReadContext) -> list[pl.Expr]:
    none = pl.lit(None, pl.String)
    return [
        pl.lit("crm").alias("source"),
        pl.lit(ctx.source_format).alias("source_format"),
        none.alias("anonymous_id"),
        none.alias("user_id"),
        pl.lit(None, pl.String).alias("email_hash"),
        pl.lit(None, pl.String).alias("phone_hash"),
        none.alias("loyalty_id"),
        none.alias("session_id"),
        none.alias("campaign_source"),
        none.alias("campaign_medium"),
        none.alias("campaign_name"),
        none.alias("campaign_term"),
        none.alias("campaign_content"),
        none.alias("page_url"),
        none.alias("referrer_url"),
    ]


def crm_activities(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    s = ctx.settings.crm
    activity_id = text(col(frame, "activity_id"))
    activity_type = text(col(frame, "activity_type"))
    key = pl.concat_str([pl.lit("crm:activity:"), activity_id])
    frame = frame.with_columns(
        key.alias("event_key"),
        *_crm_event_base(ctx),
        mapped(activity_type.str.to_lowercase(), s.activities, snake(activity_type)).alias("activity"),
        pl.coalesce(mapped(text(col(frame, "channel")).str.to_lowercase(), s.channels, None), pl.lit("crm")).alias("channel"),
        parse_utc(col(frame, "occurred_at"), ctx.timestamp_format).alias("occurred_at"),
        text(col(frame, "contact_id")).alias("contact_id"),
        pl.lit(None, pl.String).alias("order_id"),
        pl.lit("crm_activity").alias("touchpoint_type"),
        pl.coalesce(text(col(frame, "subject")), activity_type).alias("touchpoint"),
        pl.lit(None, pl.Float64).alias("revenue"),
        pl.lit(None, pl.String).alias("currency"),
        json_object(frame, ["activity_type", "channel", "outcome", "score", "subject", *extras(frame, CRM_ACTIVITY_INPUTS)], numeric=("score",)).alias("attributes"),
        *lineage(ctx, key),
        *problem(
            (activity_id.is_null(), "activity_id", "missing activity_id"),
            (text(col(frame, "contact_id")).is_null(), "contact_id", "missing contact_id"),
            (activity_type.is_null(), "activity_type", "missing activity_type"),
            (text(col(frame, "score")).is_not_null() & number(col(frame, "score")).is_null(), "score",
             pl.format("score '{}' is not a number", text(col(frame, "score")))),
        ),
    )
    return finish(frame, "events", {"occurred_at": ("occurred_at", "timestamp")})


def crm_deals(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    s = ctx.settings.crm
    deal_id = text(col(frame, "deal_id"))
    stage = text(col(frame, "stage"))
    stage_norm = stage.str.to_lowercase()
    changed_at = parse_utc(col(frame, "changed_at"), ctx.timestamp_format)
    won = stage_norm.is_in([w.lower() for w in s.won_deal_stages])
    lost = stage_norm.str.contains(r"^closed[ _]?lost$|^lost$")
    key = pl.concat_str([pl.lit("crm:deal:"), deal_id, pl.lit(":"), snake(stage), pl.lit(":"), changed_at.dt.strftime("%Y%m%dT%H%M%S%.6f")])
    frame = frame.with_columns(
        key.alias("event_key"),
        *_crm_event_base(ctx),
        pl.when(won).then(pl.lit("won_deal")).when(lost).then(pl.lit("lost_deal")).otherwise(pl.lit("advanced_deal")).alias("activity"),
        pl.lit("crm").alias("channel"),
        changed_at.alias("occurred_at"),
        text(col(frame, "contact_id")).alias("contact_id"),
        deal_id.alias("order_id"),
        pl.lit("deal_stage").alias("touchpoint_type"),
        stage.alias("touchpoint"),
        pl.when(won).then(number(col(frame, "amount"))).alias("revenue"),
        text(col(frame, "currency")).str.to_uppercase().alias("currency"),
        json_object(frame, ["deal_id", "stage", "amount", *extras(frame, CRM_DEAL_INPUTS)], numeric=("amount",)).alias("attributes"),
        *lineage(ctx, key),
        *problem(
            (deal_id.is_null(), "deal_id", "missing deal_id"),
            (text(col(frame, "contact_id")).is_null(), "contact_id", "missing contact_id"),
            (stage.is_null(), "stage", "missing stage"),
            (number(col(frame, "amount")) < 0, "amount", "negative deal amount"),
        ),
    )
    return finish(frame, "events", {"occurred_at": ("changed_at", "timestamp"), "revenue": ("amount", "number")})


def crm_contacts(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    frame = hashed_identifiers(frame, ctx, "email", "phone")
    values = [
        text(col(frame, "contact_id")).alias("contact_id"),
        pl.col("email_hash"),
        pl.col("phone_hash"),
        text(col(frame, "user_id")).alias("user_id"),
        text(col(frame, "loyalty_id")).alias("loyalty_id"),
        text(col(frame, "lifecycle_stage")).str.to_lowercase().alias("lifecycle_stage"),
        text(col(frame, "country")).alias("country"),
        parse_utc(col(frame, "created_at"), ctx.timestamp_format).alias("created_at"),
        parse_utc(col(frame, "updated_at"), ctx.timestamp_format).alias("updated_at"),
        boolean(col(frame, "is_deleted")).alias("is_deleted"),
    ]
    frame = frame.with_columns(values)
    row_key = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in ("contact_id", "email_hash", "phone_hash", "user_id", "loyalty_id",
                                                          "lifecycle_stage", "country", "created_at", "updated_at", "is_deleted")],
        separator="|",
    )
    frame = frame.with_columns(
        with_flags(json_object(frame, extras(frame, CONTACT_INPUTS + ["email_hash", "phone_hash"]))).alias("attributes"),
        *lineage(ctx, row_key, pl.col("updated_at")),
        *problem(
            (pl.col("contact_id").is_null(), "contact_id", "missing contact_id"),
            (pl.col("is_deleted").is_null(), "is_deleted", pl.format("is_deleted '{}' is not true/false", text(col(frame, "is_deleted")))),
        ),
    )
    return finish(frame, "contacts", {"created_at": ("created_at", "timestamp"), "updated_at": ("updated_at", "timestamp")})


# --- store --------------------------------------------------------------------------------------

STORE_INPUTS = ["store_id", "name", "region", "timezone"]
TRANSACTION_INPUTS = [
    "transaction_id", "line_number", "store_id", "occurred_at", "loyalty_id", "receipt_email", "receipt_phone", "sku",
    "quantity", "unit_price", "currency", "transaction_type", "timezone",
]
VISIT_INPUTS = ["visit_id", "store_id", "occurred_at", "loyalty_id", "visit_type", "timezone"]


def _known_timezone(expr: pl.Expr) -> pl.Expr:
    import zoneinfo

    return expr.is_in(sorted(zoneinfo.available_timezones()))


def store_stores(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    tz = text(col(frame, "timezone"))
    frame = frame.with_columns(
        text(col(frame, "store_id")).alias("store_id"),
        text(col(frame, "name")).alias("name"),
        text(col(frame, "region")).alias("region"),
        tz.alias("timezone"),
        json_object(frame, extras(frame, STORE_INPUTS)).alias("attributes"),
    )
    row_key = pl.concat_str([pl.col(c).fill_null("") for c in ("store_id", "name", "region", "timezone")], separator="|")
    frame = frame.with_columns(
        *lineage(ctx, row_key),
        *problem(
            (pl.col("store_id").is_null(), "store_id", "missing store_id"),
            (tz.is_not_null() & ~_known_timezone(tz), "timezone", pl.format("'{}' is not an IANA timezone name", tz)),
        ),
    )
    return finish(frame, "stores", {})


def store_transactions(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    frame = hashed_identifiers(frame, ctx, "receipt_email", "receipt_phone")
    quantity = number(col(frame, "quantity"))
    declared = text(col(frame, "transaction_type")).str.to_lowercase()
    kind = pl.coalesce(declared, pl.when(quantity < 0).then(pl.lit("return")).otherwise(pl.lit("sale")))
    tz = text(col(frame, "timezone"))
    txn = text(col(frame, "transaction_id"))
    line = integer(col(frame, "line_number"))
    frame = frame.with_columns(
        txn.alias("transaction_id"),
        line.alias("line_number"),
        text(col(frame, "store_id")).alias("store_id"),
        parse_local(col(frame, "occurred_at"), ctx.timestamp_format).alias("occurred_at_local"),
        tz.alias("timezone"),
        text(col(frame, "loyalty_id")).alias("loyalty_id"),
        text(col(frame, "sku")).alias("sku"),
        # Returns are stored with negative quantities whichever sign the export used.
        pl.when(kind == "return").then(-quantity.abs()).otherwise(quantity).alias("quantity"),
        number(col(frame, "unit_price")).alias("unit_price"),
        text(col(frame, "currency")).str.to_uppercase().alias("currency"),
        kind.alias("transaction_type"),
        with_flags(json_object(frame, extras(frame, TRANSACTION_INPUTS + ["email_hash", "phone_hash"]))).alias("attributes"),
        *lineage(ctx, pl.concat_str([txn, pl.lit(":"), line.cast(pl.String)])),
        *problem(
            (txn.is_null(), "transaction_id", "missing transaction_id"),
            (text(col(frame, "line_number")).is_null(), "line_number", "missing line_number"),
            (line.is_null(), "line_number", pl.format("line_number '{}' is not a whole number", text(col(frame, "line_number")))),
            (text(col(frame, "store_id")).is_null(), "store_id", "missing store_id"),
            (tz.is_not_null() & ~_known_timezone(tz), "timezone", pl.format("'{}' is not an IANA timezone name", tz)),
        ),
    )
    origins = {"occurred_at_local": ("occurred_at", "timestamp"), "quantity": ("quantity", "number"), "unit_price": ("unit_price", "number")}
    return finish(frame, "transactions", origins)


def store_visits(frame: pl.DataFrame, ctx: ReadContext) -> Canonical:
    visit_id = text(col(frame, "visit_id"))
    tz = text(col(frame, "timezone"))
    frame = frame.with_columns(
        visit_id.alias("visit_id"),
        text(col(frame, "store_id")).alias("store_id"),
        parse_local(col(frame, "occurred_at"), ctx.timestamp_format).alias("occurred_at_local"),
        tz.alias("timezone"),
        text(col(frame, "loyalty_id")).alias("loyalty_id"),
        snake(pl.coalesce(text(col(frame, "visit_type")), pl.lit("visit"))).alias("visit_type"),
        json_object(frame, extras(frame, VISIT_INPUTS)).alias("attributes"),
        *lineage(ctx, visit_id),
        *problem(
            (visit_id.is_null(), "visit_id", "missing visit_id"),
            (text(col(frame, "store_id")).is_null(), "store_id", "missing store_id"),
            (tz.is_not_null() & ~_known_timezone(tz), "timezone", pl.format("'{}' is not an IANA timezone name", tz)),
        ),
    )
    visit_type = pl.col("visit_type")
    fallback = pl.concat_str([pl.lit("had_store_"), visit_type])
    frame = frame.with_columns(mapped(visit_type, ctx.settings.store.visit_activities, fallback).alias("activity"))
    return finish(frame, "visits", {"occurred_at_local": ("occurred_at", "timestamp")})


def redacted(value, salt: str, kind: str, default_country: str) -> str | None:
    """A PII value as it may appear in a raw record kept in quarantine: its hash, never its text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return value
    normalised = privacy.normalise_email(str(value)) if kind == "email" else privacy.normalise_phone(str(value), default_country)
    return f"sha256:{privacy.hash_value(normalised, salt)}" if normalised else "[invalid, redacted]"


def redact_json_text(text: str, settings: Settings) -> str:
    """A JSON record's text with every email or phone field replaced by its hash (for quarantine)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # the caller scrubs email-like text from it
    return dumps(_redact_value(obj, "", settings))


def _redact_value(value, key: str, settings: Settings):
    lower = key.lower()
    if isinstance(value, dict):
        return {k: _redact_value(v, k, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, key, settings) for v in value]
    country = settings.ingest.phone_default_country
    if lower in ("email", "receipt_email", "email_address"):
        return redacted(value, settings.hash_salt, "email", country)
    if lower in ("phone", "receipt_phone", "phone_number", "mobile"):
        return redacted(value, settings.hash_salt, "phone", country)
    return value


def dumps(obj) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
