"""The default channel grouping for web traffic, from campaign tags and the referrer.

Rules, first match wins (docs/channels.md has them with examples):

 1. email          medium is email/e-mail/newsletter, the referrer is a webmail (Snowplow
                   refr_medium = email), or the landing URL carries the CRM contact parameter
 2. paid_search    a paid medium (cpc, ppc, paid*, retargeting, or a click id such as gclid on the
                   URL) from a search engine source or referrer
 3. paid_social    a paid medium from a social network
 4. display        medium display, banner, expandable, interstitial or cpm
 5. paid_other     any other paid medium
 6. affiliate      medium affiliate(s)
 7. organic_social medium social, or a social source or referrer
 8. organic_search medium organic, or a search engine source or referrer
 9. referral       medium referral, app or link
10. internal       the referrer is the site itself (navigation inside a visit)
11. referral       any other referrer
12. direct         no campaign tags and no referrer
13. unassigned     anything else (tags we cannot classify)
"""

from __future__ import annotations

import re

import polars as pl

from journey_analytics.settings import WebSettings

PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
DISPLAY_MEDIUM = r"^(display|banner|expandable|interstitial|cpm)$"
SOCIAL_MEDIUM = r"^(social|social[-_ ]network|social[-_ ]media|sm|social[-_ ]?paid|paid[-_ ]?social)$"
EMAIL_MEDIUM = r"^(e[-_ ]?mail|newsletter)$"


def url_host(url: pl.Expr) -> pl.Expr:
    return url.str.extract(r"^[A-Za-z][A-Za-z0-9+.\-]*://([^/:?#@]+)", 1).str.to_lowercase()


def url_param(url: pl.Expr, name: str) -> pl.Expr:
    """The (raw) value of query parameter `name` in a URL, or null."""
    return url.str.extract(rf"[?&]{re.escape(name)}=([^&#]*)", 1)


def _host_pattern(entries: list[str]) -> str:
    parts = []
    for e in entries:
        e = e.lower()
        parts.append(rf"(^|\.){re.escape(e)}" if e.endswith(".") else rf"(^|\.){re.escape(e)}$")
    return "|".join(parts)


def _source_pattern(entries: list[str]) -> str:
    """Bare source names (`google`, `facebook`) as well as host names."""
    names = set()
    for e in entries:
        label = e.lower().rstrip(".").split(".")[0]
        names.add(label if len(label) >= 3 else e.lower().rstrip("."))
    return r"^(" + "|".join(sorted(re.escape(n) for n in names)) + r")$|" + _host_pattern(entries)


def channel_expr(
    settings: WebSettings,
    *,
    medium: pl.Expr,
    source: pl.Expr,
    page_url: pl.Expr,
    referrer_url: pl.Expr,
    referrer_medium: pl.Expr | None = None,
) -> pl.Expr:
    medium = medium.str.to_lowercase().str.strip_chars()
    source = source.str.to_lowercase().str.strip_chars()
    ref_host = url_host(referrer_url)
    page_host = url_host(page_url)
    referrer_medium = (referrer_medium if referrer_medium is not None else pl.lit(None, pl.String)).str.to_lowercase()

    search_src = source.str.contains(_source_pattern(settings.search_engines)).fill_null(False) | ref_host.str.contains(
        _host_pattern(settings.search_engines)
    ).fill_null(False) | (referrer_medium == "search").fill_null(False)
    social_src = source.str.contains(_source_pattern(settings.social_networks)).fill_null(False) | ref_host.str.contains(
        _host_pattern(settings.social_networks)
    ).fill_null(False) | (referrer_medium == "social").fill_null(False)
    click_id = pl.any_horizontal(*[url_param(page_url, p).is_not_null() for p in settings.paid_click_ids])
    paid = medium.str.contains(PAID_MEDIUM).fill_null(False) | click_id.fill_null(False)
    internal_hosts = [h.lower() for h in settings.internal_hosts]
    internal = ((ref_host == page_host) | ref_host.is_in(internal_hosts)).fill_null(False) | (
        referrer_medium == "internal"
    ).fill_null(False)
    has_contact = url_param(page_url, settings.contact_id_param).is_not_null()
    no_tags = medium.is_null() & source.is_null()

    return (
        pl.when(medium.str.contains(EMAIL_MEDIUM).fill_null(False) | (referrer_medium == "email").fill_null(False) | has_contact)
        .then(pl.lit("email"))
        .when(paid & search_src)
        .then(pl.lit("paid_search"))
        .when(paid & social_src)
        .then(pl.lit("paid_social"))
        .when(medium.str.contains(DISPLAY_MEDIUM).fill_null(False))
        .then(pl.lit("display"))
        .when(paid)
        .then(pl.lit("paid_other"))
        .when(medium.str.contains(r"^affiliates?$").fill_null(False))
        .then(pl.lit("affiliate"))
        .when(medium.str.contains(SOCIAL_MEDIUM).fill_null(False) | social_src)
        .then(pl.lit("organic_social"))
        .when((medium == "organic").fill_null(False) | search_src)
        .then(pl.lit("organic_search"))
        .when(medium.str.contains(r"^(referral|app|link)$").fill_null(False))
        .then(pl.lit("referral"))
        .when(no_tags & internal)
        .then(pl.lit("internal"))
        .when(no_tags & ref_host.is_not_null())
        .then(pl.lit("referral"))
        .when(no_tags)
        .then(pl.lit("direct"))
        .otherwise(pl.lit("unassigned"))
    )


def canonical_channel(settings: WebSettings, referrer_medium: pl.Expr | None = None) -> pl.Expr:
    """The channel of a staged web event, from its canonical campaign, page and referrer columns."""
    return channel_expr(
        settings,
        medium=pl.col("campaign_medium"),
        source=pl.col("campaign_source"),
        page_url=pl.col("page_url"),
        referrer_url=pl.col("referrer_url"),
        referrer_medium=referrer_medium,
    ).alias("channel")
