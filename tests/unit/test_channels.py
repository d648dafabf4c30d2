import polars as pl
import pytest

from journey_analytics.channels import channel_expr
from journey_analytics.settings import WebSettings

SITE = "https://shop.example.com/p/1"


@pytest.mark.parametrize(
    ("medium", "source", "page_url", "referrer", "expected"),
    [
        ("cpc", "google", SITE, None, "paid_search"),
        ("paid_social", "facebook", SITE, None, "paid_social"),
        ("display", "adnet", SITE, None, "display"),
        ("cpc", "adnet", SITE, None, "paid_other"),
        ("affiliate", "vouchers", SITE, None, "affiliate"),
        ("email", "newsletter", SITE, None, "email"),
        (None, None, SITE + "?cid=C1", None, "email"),
        (None, None, SITE + "?gclid=abc", "https://www.google.co.uk/", "paid_search"),
        (None, None, SITE, "https://www.google.com/", "organic_search"),
        (None, None, SITE, "https://www.facebook.com/", "organic_social"),
        (None, None, SITE, "https://blog.example.org/post", "referral"),
        (None, None, SITE, "https://shop.example.com/", "internal"),
        (None, None, SITE, None, "direct"),
        ("carrier_pigeon", "x", SITE, None, "unassigned"),
    ],
)
def test_default_channel_grouping(medium, source, page_url, referrer, expected):
    frame = pl.DataFrame({"medium": [medium], "source": [source], "page_url": [page_url], "referrer": [referrer]},
                         schema={"medium": pl.String, "source": pl.String, "page_url": pl.String, "referrer": pl.String})
    out = frame.select(channel_expr(WebSettings(), medium=pl.col("medium"), source=pl.col("source"),
                                    page_url=pl.col("page_url"), referrer_url=pl.col("referrer")).alias("channel"))
    assert out.item() == expected
