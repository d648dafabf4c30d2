from journey_analytics import privacy


def test_emails_are_trimmed_and_lower_cased_before_hashing():
    assert privacy.normalise_email("  Jo.Smith@Example.COM ") == "jo.smith@example.com"
    assert privacy.hash_value("jo.smith@example.com", "s") == privacy.hash_value(privacy.normalise_email("JO.SMITH@example.com"), "s")


def test_phones_become_e164_with_the_default_country():
    assert privacy.normalise_phone("07700 900123", "GB") == "+447700900123"
    assert privacy.normalise_phone("+44 (0)7700-900123", "GB") == "+447700900123"
    assert privacy.normalise_phone("(212) 555-0123", "US") == "+12125550123"
    assert privacy.normalise_phone("not a phone", "GB") is None


def test_the_salt_changes_the_hash():
    assert privacy.hash_value("a@b.com", "one") != privacy.hash_value("a@b.com", "two")
    assert len(privacy.hash_value("a@b.com", "one")) == 64


def test_scrub_text_replaces_email_addresses_inside_free_text():
    out = privacy.scrub_text("call back Ann (ann@example.com) today", "salt")
    assert "ann@example.com" not in out
    assert privacy.hash_value("ann@example.com", "salt") in out
