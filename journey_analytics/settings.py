"""Every tunable setting of the pipeline, in one typed place, with its default and why.

Users override settings in `journey.toml` at the project root (or the file named by the
`JOURNEY_CONFIG` environment variable); nothing here needs a code change. Paths in the file are
relative to the file's own folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Environment variable holding the salt used to hash emails and phones.
SALT_ENV = "JOURNEY_HASH_SALT"
#: The demo salt, used only when JOURNEY_HASH_SALT is unset. Documented in docs/privacy.md:
#: anyone can recompute hashes made with it, so real deployments must set their own.
DEMO_SALT = "journey-analytics-demo-salt"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """How one canonical field is read from a user's export.

    `column` names the user's column; `constant` gives a fixed value instead. `regex` keeps the
    first capture group (e.g. `^(\\d+)(?:\\.0)?$` turns `13607.0` into `13607`); `values` maps
    the user's spellings to ours (e.g. `{"S" = "sale"}`); `prefix_values` maps a value's prefix
    (e.g. `{"C" = "return"}` for UCI cancellations), `default` fills what nothing else matched.
    `row_number_within` numbers the rows of a file within groups of that column, in file order
    (for exports without line numbers).
    """

    column: str | None = None
    constant: str | None = None
    regex: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    prefix_values: dict[str, str] = Field(default_factory=dict)
    default: str | None = None
    row_number_within: str | None = None


class Mapping(_Model):
    """A user export mapped onto one of our entities, chosen by file name pattern."""

    entity: str
    #: glob on the file name (not the folder), e.g. "online_retail*.csv"
    match: str
    #: "csv", "jsonl", "json" (an array) or "parquet"
    format: Literal["csv", "jsonl", "json", "parquet"] = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    #: strptime format of the export's timestamps when they are not ISO-8601 (e.g. "%m/%d/%Y %H:%M")
    timestamp_format: str | None = None
    #: canonical field -> user column name, or a full ColumnSpec
    columns: dict[str, str | ColumnSpec] = Field(default_factory=dict)


class WebSettings(_Model):
    #: query parameter on email landing URLs that carries the CRM contact id
    contact_id_param: str = "cid"
    #: hosts whose referrers count as navigation inside the site (besides the page's own host)
    internal_hosts: list[str] = Field(default_factory=list)
    #: Segment track event name -> activity. Unlisted names become snake_case of the name.
    track_activities: dict[str, str] = Field(
        default_factory=lambda: {
            "Products Searched": "searched_products",
            "Product List Viewed": "viewed_product_list",
            "Product Viewed": "viewed_product",
            "Product Clicked": "clicked_product",
            "Product Added": "added_to_cart",
            "Product Removed": "removed_from_cart",
            "Cart Viewed": "viewed_cart",
            "Checkout Started": "started_checkout",
            "Checkout Step Completed": "completed_checkout_step",
            "Payment Info Entered": "entered_payment_info",
            "Order Completed": "completed_order",
            "Order Refunded": "refunded_order",
            "Order Cancelled": "cancelled_order",
            "Product Reviewed": "reviewed_product",
            "Product Shared": "shared_product",
            "Products Compared": "compared_products",
            "Signed Up": "signed_up",
            "Signed In": "signed_in",
            "Quote Requested": "requested_quote",
            "Referral Sent": "sent_referral",
        }
    )
    #: Snowplow event / event_name -> activity. Unlisted names become snake_case.
    snowplow_activities: dict[str, str] = Field(
        default_factory=lambda: {
            "page_view": "viewed_page",
            "page_ping": "pinged_page",
            "link_click": "clicked_link",
            "submit_form": "submitted_form",
            "change_form": "changed_form",
            "focus_form": "focused_form",
            "transaction": "completed_order",
            "transaction_item": "ordered_item",
            "add_to_cart": "added_to_cart",
            "remove_from_cart": "removed_from_cart",
            "site_search": "searched_products",
        }
    )
    #: host suffixes of search engines (organic or paid search)
    search_engines: list[str] = Field(
        default_factory=lambda: [
            "google.", "bing.com", "yahoo.", "duckduckgo.com", "baidu.com", "yandex.",
            "ecosia.org", "ask.com", "naver.com", "seznam.cz", "qwant.com", "startpage.com",
        ]
    )
    #: host suffixes of social networks
    social_networks: list[str] = Field(
        default_factory=lambda: [
            "facebook.com", "fb.com", "instagram.com", "t.co", "twitter.com", "x.com",
            "linkedin.com", "lnkd.in", "pinterest.", "reddit.com", "tiktok.com", "youtube.com",
            "snapchat.com", "threads.net", "whatsapp.com", "messenger.com",
        ]
    )
    #: click-id query parameters that mark paid traffic
    paid_click_ids: list[str] = Field(
        default_factory=lambda: ["gclid", "gbraid", "wbraid", "msclkid", "fbclid", "ttclid", "dclid", "li_fat_id"]
    )


class EmailSettings(_Model):
    #: SendGrid event -> activity
    activities: dict[str, str] = Field(
        default_factory=lambda: {
            "processed": "processed_email",
            "dropped": "dropped_email",
            "delivered": "received_email",
            "deferred": "deferred_email",
            "bounce": "bounced_email",
            "open": "opened_email",
            "click": "clicked_email",
            "spamreport": "reported_email_spam",
            "unsubscribe": "unsubscribed_email",
            "group_unsubscribe": "unsubscribed_email_group",
            "group_resubscribe": "resubscribed_email_group",
        }
    )
    #: custom-argument names that carry the campaign and the CRM contact id
    campaign_fields: list[str] = Field(default_factory=lambda: ["campaign", "campaign_name", "marketing_campaign_name"])
    contact_id_fields: list[str] = Field(default_factory=lambda: ["contact_id", "cid", "crm_contact_id"])


class CrmSettings(_Model):
    #: CRM activity_type -> activity
    activities: dict[str, str] = Field(
        default_factory=lambda: {
            "call": "had_call",
            "meeting": "attended_meeting",
            "chat": "chatted_with_agent",
            "email": "emailed_agent",
            "form_submission": "submitted_form",
            "support_ticket_opened": "opened_support_ticket",
            "support_ticket_closed": "closed_support_ticket",
            "survey_response": "responded_to_survey",
            "review": "posted_review",
            "referral": "referred_friend",
            "loyalty_signup": "joined_loyalty_programme",
            "demo": "attended_demo",
            "quote": "requested_quote",
        }
    )
    #: CRM interaction channel -> our channel
    channels: dict[str, str] = Field(
        default_factory=lambda: {
            "phone": "call_centre",
            "call": "call_centre",
            "chat": "chat",
            "social": "organic_social",
            "in_person": "in_person",
            "web": "web_form",
            "email": "email",
            "store": "store",
        }
    )
    #: deal stages whose amount counts as revenue
    won_deal_stages: list[str] = Field(default_factory=lambda: ["closedwon", "closed_won", "won", "closed won"])


class StoreSettings(_Model):
    #: IANA timezone used for a store missing from stores*.csv (documented in docs/time.md)
    default_timezone: str = "UTC"
    #: store visit_type -> activity
    visit_activities: dict[str, str] = Field(
        default_factory=lambda: {
            "visit": "visited_store",
            "product_trial": "tried_product",
            "event": "attended_store_event",
        }
    )


class IngestSettings(_Model):
    #: earliest believable event time; anything before is quarantined
    min_timestamp: dt.datetime = dt.datetime(2000, 1, 1)
    #: an event may occur at most this long after its delivery date ends (clock skew, time zones);
    #: later timestamps are impossible and quarantined
    max_days_after_delivery: int = 2
    #: default country for phone numbers written without an international prefix (ISO 3166 alpha-2)
    phone_default_country: str = "GB"
    #: first delivery date of the daily partitions in Dagster (landing folders before it are refused
    #: with a clear message; set it earlier for older history)
    delivery_start_date: dt.date = dt.date(2010, 1, 1)


class IdentitySettings(_Model):
    #: identifier types from most to least trusted: when a component holds too many identifiers of
    #: a limited type, the links of the lowest-priority type give way first
    priority: list[str] = Field(
        default_factory=lambda: ["contact_id", "user_id", "email", "phone", "loyalty_id", "anonymous_id"]
    )
    #: the most identifiers of a type one person may hold (types not listed are unlimited): one CRM
    #: contact and one login by default, so a shared device or a family email cannot merge two people
    max_per_person: dict[str, int] = Field(default_factory=lambda: {"contact_id": 1, "user_id": 1})
    #: junk values never used as identifiers, of any type (compared trimmed and lower-cased)
    blocklist_values: list[str] = Field(
        default_factory=lambda: ["", "null", "none", "nil", "undefined", "nan", "0", "-1", "anonymous", "unknown",
                                 "n/a", "na", "test", "guest", "00000000-0000-0000-0000-000000000000"]
    )
    #: junk email addresses (hashed with the salt before comparison)
    blocklist_emails: list[str] = Field(
        default_factory=lambda: ["test@test.com", "test@example.com", "noreply@example.com", "no-reply@example.com",
                                 "none@none.com", "a@a.com", "email@email.com", "customer@example.com"]
    )
    #: junk phone numbers (normalised with the default country and hashed)
    blocklist_phones: list[str] = Field(default_factory=lambda: ["+440000000000", "+441234567890", "+10000000000"])
    #: the Dagster check on identity.persons fails when a person holds more identifiers than this
    #: (a symptom of over-merging that the per-type limits did not catch)
    max_identifiers_per_person: int = 200


class JourneySettings(_Model):
    #: a web session ends after this much inactivity on one device (the common web-analytics default)
    session_gap_minutes: int = 30
    #: a web session is cut into parts of at most this length (bots and open tabs that never idle)
    max_session_hours: int = 12
    #: a journey ends after this much inactivity, or at a purchase
    journey_gap_days: int = 30
    #: activities that are purchases: a journey ends with one, the next touch starts a new journey
    purchase_activities: list[str] = Field(default_factory=lambda: ["completed_order", "won_deal"])
    #: order of sources for events at the same instant (then the event key): documented tie-break
    source_rank: dict[str, int] = Field(default_factory=lambda: {"web": 1, "email": 2, "crm": 3, "store": 4})


class StageRule(_Model):
    """Events of these activities (and, where given, channels, touchpoint types, occurrence and
    score) belong to `stage`. An event matching rules of several stages takes the furthest."""

    stage: str
    activities: list[str]
    channels: list[str] = Field(default_factory=list)
    touchpoint_types: list[str] = Field(default_factory=list)
    #: the person's n-th time of this activity, e.g. min_occurrence = 2 for a repeat purchase
    min_occurrence: int | None = None
    max_occurrence: int | None = None
    #: the event's attributes.score (NPS 0-10, CSAT 1-5), e.g. min_score = 9 for a promoter
    min_score: float | None = None
    max_score: float | None = None


class StageModel(_Model):
    stages: list[str]
    rules: list[StageRule]


PAID_OR_CAMPAIGN = ["paid_search", "paid_social", "display", "paid_other", "affiliate", "email"]
_CONSIDER = ["viewed_product", "viewed_product_list", "clicked_product", "searched_products", "compared_products", "clicked_email"]
_DECIDE = ["added_to_cart", "viewed_cart", "started_checkout", "completed_checkout_step", "entered_payment_info", "tried_product",
           "requested_quote", "advanced_deal"]
_BUY = ["completed_order", "won_deal"]
_ADVOCATE = ["reviewed_product", "posted_review", "referred_friend", "sent_referral", "shared_product"]


def _awareness(stage: str = "awareness") -> list[StageRule]:
    return [
        StageRule(stage=stage, activities=["viewed_page", "viewed_screen"], channels=PAID_OR_CAMPAIGN),  # ad or campaign landing
        StageRule(stage=stage, activities=["viewed_page", "viewed_screen", "visited_store"], max_occurrence=1),  # first visit
        StageRule(stage=stage, activities=["opened_email"], max_occurrence=1),  # first email open
    ]


def _preset_models() -> dict[str, StageModel]:
    consider = StageRule(stage="consideration", activities=_CONSIDER)
    first_buy = StageRule(stage="purchase", activities=_BUY, max_occurrence=1)
    any_buy = StageRule(stage="purchase", activities=_BUY)
    repeat = StageRule(stage="retention", activities=["completed_order"], min_occurrence=2)
    keep = StageRule(stage="retention", activities=["joined_loyalty_programme", "closed_support_ticket"])
    promoter = StageRule(stage="advocacy", activities=["responded_to_survey"], min_score=9)
    advocate = StageRule(stage="advocacy", activities=_ADVOCATE)
    return {
        "default": StageModel(
            stages=["awareness", "consideration", "decision", "purchase", "retention", "advocacy"],
            rules=[*_awareness(), consider, StageRule(stage="decision", activities=_DECIDE), first_buy, repeat, keep, promoter, advocate],
        ),
        "awareness_consideration_decision": StageModel(
            stages=["awareness", "consideration", "decision"],
            rules=[*_awareness(), consider, StageRule(stage="decision", activities=_DECIDE + _BUY)],
        ),
        "awareness_consideration_purchase_loyalty": StageModel(
            stages=["awareness", "consideration", "purchase", "loyalty"],
            rules=[*_awareness(), StageRule(stage="consideration", activities=_CONSIDER + _DECIDE), first_buy,
                   StageRule(stage="loyalty", activities=["completed_order"], min_occurrence=2),
                   StageRule(stage="loyalty", activities=["joined_loyalty_programme", *_ADVOCATE]),
                   StageRule(stage="loyalty", activities=["responded_to_survey"], min_score=9)],
        ),
        "awareness_consideration_purchase_retention_advocacy": StageModel(
            stages=["awareness", "consideration", "purchase", "retention", "advocacy"],
            rules=[*_awareness(), StageRule(stage="consideration", activities=_CONSIDER + _DECIDE), first_buy, repeat, keep,
                   promoter, advocate],
        ),
        "purchase_cycle": StageModel(
            stages=["recognition", "consideration", "decision", "purchase", "use", "evaluation"],
            rules=[*_awareness("recognition"), consider, StageRule(stage="decision", activities=_DECIDE), any_buy,
                   StageRule(stage="use", activities=["opened_support_ticket", "closed_support_ticket", "joined_loyalty_programme",
                                                      "returned_order", "refunded_order"]),
                   StageRule(stage="evaluation", activities=["responded_to_survey", *_ADVOCATE])],
        ),
    }


class StageSettings(_Model):
    #: the stage models computed on every run (each a key of `models`); the first is the main one
    active_models: list[str] = Field(default_factory=lambda: ["default"])
    #: stage models by name: the presets, plus any defined in journey.toml
    models: dict[str, StageModel] = Field(default_factory=_preset_models)
    #: a chain of stages counts only if its last stage comes within this many days of its first
    window_days: int = 30
    #: "ordered": stages must come in order, other events may come between (ClickHouse windowFunnel);
    #: "strict": an event of any other stage between two consecutive stages breaks the chain;
    #: "any": a unit reaches stage k once it has events of stages 1..k, in any order, within one window
    order_mode: Literal["ordered", "strict", "any"] = "ordered"
    #: whether reaching a later stage also counts the stages it skipped as reached
    allow_skipped: bool = False
    #: what a funnel counts: journeys (docs/journeys.md) or persons
    unit: Literal["journey", "person"] = "journey"

    @field_validator("models", mode="after")
    @classmethod
    def _keep_presets(cls, models: dict[str, StageModel]) -> dict[str, StageModel]:
        """Models from journey.toml are added to the presets (or replace one of the same name)."""
        return {**_preset_models(), **models}

    @model_validator(mode="after")
    def _known_models(self) -> "StageSettings":
        unknown = [m for m in self.active_models if m not in self.models]
        if unknown:
            raise ValueError(f"stages.active_models names unknown model(s) {unknown}; known: {sorted(self.models)}")
        for name, model in self.models.items():
            stray = sorted({r.stage for r in model.rules} - set(model.stages))
            if stray:
                raise ValueError(f"stage model {name!r}: rules name stage(s) {stray} not in its stages {model.stages}")
        return self


class ChurnSignal(_Model):
    """An event that ends a customer relationship outright: its activity and, optionally, the
    touchpoints (e.g. the lifecycle stage entered) that make it one."""

    activity: str
    touchpoints: list[str] = Field(default_factory=list)


class MartSettings(_Model):
    #: the data's end for recency, churn and censoring; default: the last event in the stream
    as_of: dt.datetime | None = None
    #: events that are not the customer's own doing (deliveries, CRM bookkeeping): they never count
    #: as activity for churn, lifecycle or retention, and are never attribution touches
    passive_activities: list[str] = Field(
        default_factory=lambda: ["processed_email", "received_email", "deferred_email", "dropped_email", "bounced_email",
                                 "created_contact", "entered_lifecycle_stage", "deleted_contact", "identified_user",
                                 "aliased_user", "pinged_page"]
    )
    #: after a purchase, a person churns after this many days without activity
    churn_days: int = 90
    #: per-channel churn windows (the channel of the person's last touch before the gap), e.g. {store = 180}
    churn_days_by_channel: dict[str, int] = Field(default_factory=dict)
    #: explicit churn signals: unsubscribing, a CRM contact deleted or closed
    churn_signals: list[ChurnSignal] = Field(
        default_factory=lambda: [
            ChurnSignal(activity="unsubscribed_email"),
            ChurnSignal(activity="unsubscribed_email_group"),
            ChurnSignal(activity="deleted_contact"),
            ChurnSignal(activity="entered_lifecycle_stage", touchpoints=["closed", "churned", "former_customer", "lost"]),
        ]
    )
    #: attribution touches: events of these activities ...
    touch_activities: list[str] = Field(
        default_factory=lambda: ["viewed_page", "viewed_screen", "opened_email", "clicked_email", "had_call", "attended_meeting",
                                 "chatted_with_agent", "submitted_form", "attended_demo", "visited_store", "tried_product",
                                 "attended_store_event", "completed_order", "won_deal"]
    )
    #: ... unless their channel is one of these (a page view inside the site is not a new touch)
    non_touch_channels: list[str] = Field(default_factory=lambda: ["internal"])
    #: time-decay attribution: a touch this many days before the conversion gets half the credit
    time_decay_half_life_days: float = 7.0
    #: position-based attribution: shares of the first and last touch (the middle touches share the rest)
    position_first_share: float = 0.4
    position_last_share: float = 0.4
    #: abandonment: a unit that did one of these and made no purchase within the funnel window abandoned
    cart_activities: list[str] = Field(default_factory=lambda: ["added_to_cart"])
    checkout_activities: list[str] = Field(default_factory=lambda: ["started_checkout", "completed_checkout_step", "entered_payment_info"])
    #: drop-off drivers need at least this many units with the activity
    driver_min_support: int = 20
    #: lifecycle status and retention cohorts: "week" or "month"
    period: Literal["week", "month"] = "month"

    @model_validator(mode="after")
    def _shares(self) -> "MartSettings":
        total = self.position_first_share + self.position_last_share
        if not 0 < total <= 1 or min(self.position_first_share, self.position_last_share) < 0:
            raise ValueError("marts.position_first_share + position_last_share must lie in (0, 1], each at least 0")
        return self


class PublishSettings(_Model):
    """The read-only snapshot for BI tools (docs/bi-tools.md)."""

    #: publish after every run that builds the marts
    enabled: bool = True
    #: the snapshot file; default: published/<warehouse name>.duckdb beside the warehouse
    path: Path | None = None
    #: schemas copied whole, and single tables (schema.table) copied besides
    schemas: list[str] = Field(default_factory=lambda: ["marts"])
    tables: list[str] = Field(default_factory=lambda: ["stages.unit_progress", "identity.persons"])
    #: DuckDB storage format of the snapshot: v1.0.0 is readable by every DuckDB from 1.0 on (the
    #: DuckDB 1.x JDBC, ODBC and duckdb-engine drivers BI tools ship)
    storage_version: str = "v1.0.0"

    @field_validator("tables")
    @classmethod
    def _qualified(cls, tables: list[str]) -> list[str]:
        for t in tables:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", t):
                raise ValueError(f"publish.tables: {t!r} is not schema.table")
        return tables


class Settings(_Model):
    """Everything a user can tune. Defaults are documented in docs/ and in this file."""

    #: folder with landing/<source>/<YYYY-MM-DD>/ files (relative to the config file)
    landing_dir: Path = PROJECT_ROOT / "data" / "sample" / "landing"
    #: the DuckDB warehouse file
    warehouse_path: Path = PROJECT_ROOT / "data" / "warehouse.duckdb"
    #: DuckDB memory limit and spill folder (bounded memory on big loads). The default is half of
    #: the memory DuckDB sees (its own default is 80 %): the rest leaves room for one ingestion
    #: chunk of polars frames (`ingest_web` peaks at about 7 GiB with full chunks, DuckDB included)
    #: and the operating system.
    #: A size ("12GB") or another share ("40%") may be set instead.
    duckdb_memory_limit: str = "50%"
    duckdb_temp_dir: Path = PROJECT_ROOT / "data" / ".duckdb_tmp"
    duckdb_threads: int | None = None
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    journeys: JourneySettings = Field(default_factory=JourneySettings)
    stages: StageSettings = Field(default_factory=StageSettings)
    marts: MartSettings = Field(default_factory=MartSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    #: user exports mapped onto our entities, per source
    mappings: dict[Literal["web", "email", "crm", "store"], dict[str, Mapping]] = Field(default_factory=dict)

    @property
    def published_path(self) -> Path:
        """Where the BI snapshot goes (publish.path, or published/<warehouse name> beside the warehouse)."""
        return self.publish.path or self.warehouse_path.parent / "published" / self.warehouse_path.name

    @property
    def hash_salt(self) -> str:
        return os.environ.get(SALT_ENV) or DEMO_SALT


def config_path() -> Path:
    return Path(os.environ.get("JOURNEY_CONFIG", PROJECT_ROOT / "journey.toml"))


def _resolve_paths(raw: dict, base: Path) -> dict:
    for key in ("landing_dir", "warehouse_path", "duckdb_temp_dir"):
        if key in raw:
            p = Path(raw[key])
            raw[key] = p if p.is_absolute() else (base / p).resolve()
    publish = raw.get("publish") or {}
    if publish.get("path") and not Path(publish["path"]).is_absolute():
        publish["path"] = (base / publish["path"]).resolve()
    return raw


def load_settings(path: Path | None = None, **overrides) -> Settings:
    """Settings from the config file (if it exists), then keyword overrides."""
    path = path or config_path()
    raw: dict = {}
    if path.exists():
        with path.open("rb") as fh:
            raw = _resolve_paths(tomllib.load(fh), path.parent)
    # environment overrides, so that `journey run --landing DIR` reaches Dagster's code location too
    for key, env in (("landing_dir", "JOURNEY_LANDING_DIR"), ("warehouse_path", "JOURNEY_WAREHOUSE_PATH")):
        if os.environ.get(env):
            raw[key] = Path(os.environ[env]).resolve()
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(raw)
