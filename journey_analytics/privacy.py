"""Normalising and hashing emails and phone numbers, so their raw text never reaches the warehouse.

Rules (docs/privacy.md):
- email: trim, lower-case; it must look like `local@domain.tld`, otherwise it is treated as
  missing and the row is flagged `invalid_email`.
- phone: parsed with the `phonenumbers` library (Google's libphonenumber rules) using the
  configured default country for numbers without an international prefix, and written as E.164
  (`+447700900123`); a number that is not a possible number is treated as missing and flagged.
- hash: hex SHA-256 of `salt + ":" + normalised value`. The salt comes from JOURNEY_HASH_SALT.

Free text that may carry an address (URLs, unknown columns, raw records kept in quarantine) is
scrubbed: every substring that looks like an email address is replaced by `email:<hash>`.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers
import polars as pl

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: an email inside free text (also percent-encoded @ in URLs)
EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def hash_value(value: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


def normalise_email(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip().lower()
    return v if re.match(EMAIL_PATTERN, v) else None


def normalise_phone(value: str | None, default_country: str) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value.strip(), default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _map_unique(series: pl.Series, fn) -> pl.Series:
    """Apply a Python function once per distinct value (identifiers repeat a lot)."""
    uniques = series.drop_nulls().unique()
    mapping = {v: fn(v) for v in uniques.to_list()}
    return series.replace_strict(mapping, default=None, return_dtype=pl.String) if mapping else pl.Series(
        series.name, [None] * len(series), dtype=pl.String
    )


def email_hashes(series: pl.Series, salt: str) -> tuple[pl.Series, pl.Series]:
    """(hash or null, is_invalid) for a column of raw email text."""
    normalised = series.str.strip_chars().str.to_lowercase()
    valid = normalised.str.contains(EMAIL_PATTERN).fill_null(False)
    cleaned = pl.Series(series.name, normalised).zip_with(valid, pl.Series([None] * len(series), dtype=pl.String))
    hashed = _map_unique(cleaned, lambda v: hash_value(v, salt))
    invalid = series.is_not_null() & (series.str.strip_chars() != "") & ~valid
    return hashed, invalid


def phone_hashes(series: pl.Series, salt: str, default_country: str) -> tuple[pl.Series, pl.Series]:
    """(hash of the E.164 form or null, is_invalid) for a column of raw phone text."""

    def one(v: str) -> str | None:
        e164 = normalise_phone(v, default_country)
        return hash_value(e164, salt) if e164 else None

    hashed = _map_unique(series, one)
    invalid = series.is_not_null() & (series.str.strip_chars() != "") & hashed.is_null()
    return hashed, invalid


def scrub_text(text: str | None, salt: str) -> str | None:
    """Replace every email-looking substring by `email:<hash>`."""
    if text is None or ("@" not in text and "%40" not in text):
        return text

    def repl(match: re.Match) -> str:
        address = normalise_email(match.group(0).replace("%40", "@"))
        return f"email:{hash_value(address, salt)}" if address else match.group(0)

    return EMAIL_IN_TEXT.sub(repl, text)


def scrub_column(series: pl.Series, salt: str) -> pl.Series:
    """scrub_text over a column, touching only values that contain an @ (fast path)."""
    suspicious = series.str.contains("@|%40", literal=False).fill_null(False)
    if not suspicious.any():
        return series
    fixed = _map_unique(series.filter(suspicious), lambda v: scrub_text(v, salt))
    out = series.to_list()
    for i, v in zip(suspicious.arg_true().to_list(), fixed.to_list()):
        out[i] = v
    return pl.Series(series.name, out, dtype=pl.String)
