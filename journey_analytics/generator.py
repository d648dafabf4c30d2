"""A deterministic generator of landing files for all four sources, with the ground truth.

It simulates people moving through a retailer's funnel across web, email, CRM and stores and
writes what each system would export, in the formats of docs/inputs.md:

* web: Segment JSON lines (gzipped); anonymous browsing on several devices before a login, a few
  devices shared by two people of one household, email clicks landing with `cid=<contact id>`;
* email: SendGrid webhook events, JSON arrays on some days and JSON lines on others;
* crm: weekly contact exports (contacts changed that week, lifecycle stage included), activities
  (forms, calls, chats, support tickets, NPS surveys, loyalty sign-ups, reviews, referrals), deals;
* store: stores, receipt lines in store-local time (with and without loyalty card or e-receipt,
  returns), visits and product trials.

Identity behaviour: people browse on their first device until they sign up, then sign in on
their other devices too; members of a household (every 40th person and the one before) both have
accounts and share a device; every 80th person shares an email address with the one before; a
loyalty programme enrols card holders in the CRM with their email at their first card purchase.
Devices that never sign in stay unlinkable, as in real data.

Behaviour: every stage drops some people (awareness -> consideration -> decision -> purchase ->
retention -> advocacy), some buyers churn (silence, unsubscribe or CRM deletion), a few Segment
messages are delivered twice and a few records are broken on purpose (so the sample exercises
the quarantine). Files are delivered 0-3 days after the event.

Ground truth goes to `truth/`: `identifiers_*.csv` (identifier_type, identifier, person_id; raw
email and phone text: this folder is test material, never loaded) and `events_*.csv` (event_key
as the pipeline names it, person_id) -- one row per event that should be staged.

Memory stays bounded: people are simulated in chunks and each chunk's records are written to
their own files before the next chunk starts. Each person has a random stream of their own
(seeded by the seed and their number), so the output depends only on the parameters.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import random
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson

UTC = dt.timezone.utc

STORES = [
    ("S01", "London Oxford Street", "UK", "Europe/London"),
    ("S02", "Manchester Arndale", "UK", "Europe/London"),
    ("S03", "Dublin Grafton Street", "IE", "Europe/Dublin"),
    ("S04", "Paris Rivoli", "FR", "Europe/Paris"),
    ("S05", "New York SoHo", "US", "America/New_York"),
]
PRODUCTS = [(f"SKU{n:04d}", round(4.99 + (n * 7.31) % 120, 2)) for n in range(1, 81)]
CAMPAIGNS = ["spring_sale", "new_arrivals", "loyalty_rewards", "weekly_digest", "back_in_stock"]
FIRST = ["alex", "sam", "jo", "chris", "pat", "lee", "kim", "max", "robin", "charlie", "jamie", "taylor"]
LAST = ["smith", "jones", "patel", "garcia", "nguyen", "brown", "murphy", "khan", "martin", "rossi"]
SITE = "https://shop.example.com"


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 200
    days: int = 60
    seed: int = 7
    start: dt.date = dt.date(2025, 3, 1)
    #: people simulated per chunk (bounds memory; each chunk writes its own files)
    chunk_size: int = 20_000


def _hex(*parts) -> str:
    return hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Person:
    """One simulated person and everything they do."""

    def __init__(self, cfg: GeneratorConfig, index: int, out: Writer):
        self.cfg, self.index, self.out = cfg, index, out
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.pid = f"P{index:07d}"
        r = self.rng
        seed = cfg.seed
        # a household: every 40th person shares a device with the person before; every 80th also an email
        self.shares_device = index % 40 == 1
        self.shares_email = index % 80 == 1
        #: both members of a household have accounts (the issue's "cookie shared by two logged-in users")
        self.household = self.shares_device or (index + 1) % 40 == 1
        n_devices = 1 + (r.random() < 0.45) + (r.random() < 0.15)
        self.devices = [_hex(seed, "device", index, k)[:16] for k in range(n_devices)]
        if self.shares_device:
            self.devices.append(_hex(seed, "device", index - 1, 0)[:16])
        first, last = r.choice(FIRST), r.choice(LAST)
        owner = index - 1 if self.shares_email else index
        family = self.shares_email or (index + 1) % 80 == 1  # the person after shares this address
        self.email = _family_email(seed, owner) if family else f"{first}.{last}{index}@example.com"
        self.has_email = self.shares_email or r.random() < 0.92
        self.phone = f"07700 9{(index * 7919) % 100000:05d}" if r.random() < 0.5 else None
        self.user_id = f"u{_hex(seed, 'user', index)[:10]}"
        self.contact_id = f"C{_hex(seed, 'contact', index)[:10].upper()}"
        self.loyalty_id = f"L{(index * 104729 + seed) % 10**9:09d}" if r.random() < 0.45 else None
        self.home_store = r.choice(STORES)
        self.registered = False
        self.in_crm = False
        self.contact_state: dict = {}
        self.unsubscribed = False
        self.churn_at: dt.datetime | None = None
        self.seen: set[tuple[str, str]] = set()

    # --- identifiers and truth -------------------------------------------------------------
    def identifier(self, kind: str, value: str | None) -> None:
        if value and (kind, value) not in self.seen:
            self.seen.add((kind, value))
            self.out.truth_identifier(kind, value, self.pid)

    def event(self, key: str) -> None:
        self.out.truth_event(key, self.pid)

    # --- time -------------------------------------------------------------------------------
    def at(self, day: float, hour_lo: int = 7, hour_hi: int = 23) -> dt.datetime:
        base = dt.datetime.combine(self.cfg.start, dt.time(), UTC) + dt.timedelta(days=int(day))
        return base + dt.timedelta(seconds=self.rng.randint(hour_lo * 3600, hour_hi * 3600 - 1))

    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.cfg.start, dt.time(), UTC) + dt.timedelta(days=self.cfg.days)

    def active(self, ts: dt.datetime) -> bool:
        return ts < self.end() and (self.churn_at is None or ts < self.churn_at)

    # --- web --------------------------------------------------------------------------------
    def session(self, ts: dt.datetime, pages: list[tuple[str, dict]], *, device: str | None = None, landing: dict | None = None,
                logged_in: bool | None = None, cid: bool = False) -> dt.datetime:
        """One browsing session: a landing page with its acquisition, then pages and track events.

        Before signing up people mostly browse on their first device; once registered they use all
        their devices and are usually logged in (the shop remembers them)."""
        r = self.rng
        if device is None:
            device = r.choice(self.devices) if self.registered else (self.devices[0] if r.random() < 0.9 else r.choice(self.devices))
        if logged_in is None:
            borrowed = self.shares_device and device == self.devices[-1]  # someone else's device: always signs in
            logged_in = self.registered and (borrowed or r.random() < 0.9)
        self.identifier("anonymous_id", device)
        landing = landing or {}
        query = dict(landing.get("query", {}))
        if cid:
            query["cid"] = self.contact_id
        path = pages[0][0] if pages and pages[0][0].startswith("/") else "/"
        url = SITE + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        referrer = landing.get("referrer")
        for n, (name, props) in enumerate(pages or [("/", {})]):
            ts = ts + dt.timedelta(seconds=r.randint(15, 240) if n else 0)
            message = {
                "messageId": f"m-{_hex(self.cfg.seed, self.index, 'msg', ts.timestamp(), n, name)[:24]}",
                "timestamp": _iso(ts) if r.random() < 0.7 else ts.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat(),
                "anonymousId": device,
                "context": {"userAgent": "Mozilla/5.0", "page": {"url": url if n == 0 else SITE + (name if name.startswith("/") else "/"),
                                                                   "path": name if name.startswith("/") else path,
                                                                   "referrer": referrer if n == 0 else url}},
            }
            if n == 0 and landing.get("campaign"):
                message["context"]["campaign"] = landing["campaign"]
            if logged_in:
                message["userId"] = self.user_id
            if name.startswith("/"):
                message.update(type="page", name=name.strip("/").replace("/", " ").title() or "Home", properties={"path": name})
            else:
                message.update(type="track", event=name, properties=props)
            self.web(message, ts)
        return ts

    def web(self, message: dict, ts: dt.datetime) -> None:
        self.out.record("web", "segment", self.delivery(ts), message)
        self.event(f"web:{message['messageId']}")
        if self.rng.random() < 0.01:  # at-least-once delivery: the same message again, maybe a day later
            self.out.record("web", "segment", self.delivery(ts) + dt.timedelta(days=self.rng.randint(0, 1)), message)

    def identify(self, ts: dt.datetime, device: str) -> None:
        traits = {"first_name": self.email.split(".")[0]}
        if self.has_email:
            traits["email"] = self._spelling(self.email)
            self.identifier("email", self.email)
        if self.phone:
            traits["phone"] = self.phone if self.rng.random() < 0.5 else "+44 " + self.phone[1:]
            self.identifier("phone", self.phone)
        message = {"type": "identify", "messageId": f"m-{_hex(self.cfg.seed, self.index, 'identify', ts.timestamp())[:24]}",
                   "timestamp": _iso(ts), "anonymousId": device, "userId": self.user_id, "traits": traits,
                   "context": {"userAgent": "Mozilla/5.0"}}
        self.identifier("user_id", self.user_id)
        self.web(message, ts)

    def _spelling(self, email: str) -> str:
        roll = self.rng.random()
        return email.upper() if roll < 0.1 else (f"  {email} " if roll < 0.2 else email)

    def delivery(self, ts: dt.datetime) -> dt.date:
        roll = self.rng.random()
        lag = 0 if roll < 0.6 else (1 if roll < 0.95 else self.rng.randint(2, 3))
        return ts.astimezone(UTC).date() + dt.timedelta(days=lag)

    def acquisition(self) -> dict:
        r = self.rng.random()
        if r < 0.25:
            return {"query": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "gclid": _hex(self.index)[:12]},
                    "referrer": "https://www.google.com/", "campaign": {"source": "google", "medium": "cpc", "name": "brand"}}
        if r < 0.45:
            return {"referrer": "https://www.google.com/"}
        if r < 0.6:
            return {"referrer": "https://www.facebook.com/"}
        if r < 0.7:
            return {"query": {"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "spring"},
                    "campaign": {"source": "facebook", "medium": "paid_social", "name": "spring"}}
        if r < 0.78:
            return {"query": {"utm_source": "adnet", "utm_medium": "display", "utm_campaign": "retarget"},
                    "campaign": {"source": "adnet", "medium": "display", "name": "retarget"}}
        if r < 0.85:
            return {"referrer": "https://www.fashionblog.example.org/post"}
        return {}

    def products(self, n: int) -> list[tuple[str, float]]:
        return [self.rng.choice(PRODUCTS) for _ in range(n)]

    # --- CRM --------------------------------------------------------------------------------
    def crm_contact(self, ts: dt.datetime, **changes) -> None:
        if not self.in_crm:
            self.in_crm = True
            self.contact_state = {
                "contact_id": self.contact_id, "email": self._spelling(self.email) if self.has_email else "",
                "phone": self.phone or "", "user_id": self.user_id if self.registered else "",
                "loyalty_id": self.loyalty_id or "", "lifecycle_stage": "lead", "country": self.home_store[2],
                "created_at": _iso(ts), "is_deleted": "false",
            }
            self.identifier("contact_id", self.contact_id)
            if self.has_email:
                self.identifier("email", self.email)
            self.identifier("phone", self.phone)
            self.identifier("loyalty_id", self.loyalty_id)
            if self.registered:
                self.identifier("user_id", self.user_id)
        self.contact_state.update({k: v for k, v in changes.items()})
        self.contact_state["updated_at"] = _iso(ts)
        # weekly export on the Monday after the change holds the contact's state at that time
        day = ts.date()
        export = day + dt.timedelta(days=7 - day.weekday())
        self.out.contact(export, dict(self.contact_state))

    def crm_activity(self, ts: dt.datetime, kind: str, channel: str, **fields) -> None:
        if not self.in_crm:
            return
        activity_id = f"A{_hex(self.cfg.seed, self.index, kind, ts.timestamp())[:12]}"
        row = {"activity_id": activity_id, "contact_id": self.contact_id, "activity_type": kind, "occurred_at": _iso(ts),
               "channel": channel, "outcome": fields.get("outcome", ""), "score": fields.get("score", ""), "subject": fields.get("subject", "")}
        self.out.record("crm", "activities", self.delivery(ts), row)
        self.event(f"crm:activity:{activity_id}")

    # --- email ------------------------------------------------------------------------------
    def emails(self, since: dt.datetime) -> list[dt.datetime]:
        """Weekly newsletters (Tuesdays 09:00 UTC) from `since` on: SendGrid events; returns click times."""
        if not (self.in_crm and self.has_email):
            return []
        clicks = []
        day = since.date() + dt.timedelta(days=(1 - since.weekday()) % 7 or 7)
        while True:
            send = dt.datetime.combine(day, dt.time(9), UTC)
            if not self.active(send) or self.unsubscribed:
                break
            campaign = CAMPAIGNS[(day.toordinal() // 7) % len(CAMPAIGNS)]
            message_id = _hex(self.cfg.seed, self.index, "sg", day)[:20]
            events = [("processed", send), ("delivered", send + dt.timedelta(seconds=self.rng.randint(2, 90)))]
            if self.rng.random() < 0.02:
                events[1] = ("bounce", events[1][1])
            elif self.rng.random() < 0.35:
                opened = send + dt.timedelta(minutes=self.rng.randint(5, 3000))
                events.append(("open", opened))
                if self.rng.random() < 0.3:
                    clicked = opened + dt.timedelta(seconds=self.rng.randint(3, 120))
                    events.append(("click", clicked))
                    clicks.append(clicked)
                if self.rng.random() < 0.02:
                    events.append(("unsubscribe", opened + dt.timedelta(seconds=200)))
                    self.unsubscribed = True
            for name, ts in events:
                if not self.active(ts):
                    continue
                sg_id = _hex(self.cfg.seed, self.index, "sgev", day, name)[:22]
                payload = {"email": self._spelling(self.email), "timestamp": int(ts.timestamp()), "event": name, "sg_event_id": sg_id,
                           "sg_message_id": message_id, "category": ["newsletter", campaign], "campaign": campaign,
                           "contact_id": self.contact_id}
                if name == "click":
                    payload["url"] = f"{SITE}/new?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}&cid={self.contact_id}"
                self.out.record("email", "sendgrid", self.delivery(ts), payload)
                self.event(f"email:{sg_id}")
            if self.unsubscribed:
                self.crm_contact(events[-1][1] + dt.timedelta(hours=1))
            day += dt.timedelta(days=7)
        return clicks

    # --- store ------------------------------------------------------------------------------
    def receipt(self, ts: dt.datetime, store, kind: str, items: list[tuple[str, float]], txn: str | None = None) -> str:
        store_id, _, _, tz = store
        txn = txn or f"T{_hex(self.cfg.seed, self.index, 'txn', ts.timestamp())[:10].upper()}"
        local = ts.astimezone(zoneinfo.ZoneInfo(tz)).replace(tzinfo=None)
        card = self.loyalty_id if (self.loyalty_id and self.rng.random() < 0.9) else ""
        ereceipt = self.has_email and not card and self.rng.random() < 0.6
        phone = self.phone if (self.phone and not card and not ereceipt and self.rng.random() < 0.3) else ""
        for n, (sku, price) in enumerate(items, start=1):
            quantity = self.rng.randint(1, 2) if kind == "sale" else -1
            row = {"transaction_id": txn, "line_number": n, "store_id": store_id, "occurred_at": local.isoformat(sep=" ", timespec="seconds"),
                   "loyalty_id": card, "receipt_email": self.email if ereceipt else "", "receipt_phone": phone or "", "sku": sku,
                   "quantity": quantity, "unit_price": f"{price:.2f}", "currency": "USD" if tz.startswith("America") else ("GBP" if store[2] == "UK" else "EUR"),
                   "transaction_type": kind}
            self.out.record("store", "transactions", self.delivery(ts), row)
        if card:
            self.identifier("loyalty_id", card)
            if not self.in_crm and kind == "sale":  # the loyalty programme enrols card holders in the CRM (with their email)
                self.crm_contact(ts)
        if ereceipt:
            self.identifier("email", self.email)
        if phone:
            self.identifier("phone", phone)
        self.event(f"store:{store_id}:{txn}:{kind}")
        return txn

    def visit(self, ts: dt.datetime, store, kind: str) -> None:
        store_id, _, _, tz = store
        visit_id = f"V{_hex(self.cfg.seed, self.index, 'visit', ts.timestamp())[:10].upper()}"
        local = ts.astimezone(zoneinfo.ZoneInfo(tz)).replace(tzinfo=None)
        card = self.loyalty_id if self.loyalty_id and self.rng.random() < 0.9 else ""
        if not card and self.rng.random() < 0.7:
            return  # a walk-in without a card is rarely recorded
        row = {"visit_id": visit_id, "store_id": store_id, "occurred_at": local.isoformat(sep=" ", timespec="seconds"),
               "loyalty_id": card, "visit_type": kind}
        self.out.record("store", "visits", self.delivery(ts), row)
        if card:
            self.identifier("loyalty_id", card)
        self.event(f"store:{store_id}:visit:{visit_id}")

    # --- the journey ------------------------------------------------------------------------
    def simulate(self) -> None:
        r = self.rng
        cfg = self.cfg
        day = r.uniform(0, cfg.days * 0.8)
        ts = self.at(day)
        device = self.devices[0]
        # awareness: an anonymous first visit
        ts = self.session(ts, [("/", {}), ("/new", {})], device=device, landing=self.acquisition())
        if r.random() > 0.75:
            return  # dropped off after awareness
        # consideration: browsing on one or more devices over the next days
        for _ in range(r.randint(1, 3)):
            ts = self.at(day + r.uniform(0.2, 4))
            day = (ts - dt.datetime.combine(cfg.start, dt.time(), UTC)).total_seconds() / 86400
            (sku, price), = self.products(1)
            pages = [("/search", {}), ("Products Searched", {"query": "jacket"}), (f"/p/{sku}", {}),
                     ("Product Viewed", {"product_id": sku, "price": price})]
            if r.random() < 0.3:
                pages.append(("Products Compared", {"product_ids": [sku, self.products(1)[0][0]]}))
            ts = self.session(ts, pages, landing=self.acquisition() if r.random() < 0.5 else {})
        if not self.active(ts):
            return
        # sign-up: identify, CRM lead, newsletter
        if r.random() < 0.7 or self.household:
            self.registered = True
            ts = ts + dt.timedelta(minutes=r.randint(1, 30))
            self.identify(ts, device)
            self.crm_contact(ts, user_id=self.user_id)
            self.crm_activity(ts, "form_submission", "web", subject="newsletter sign-up")
            for other in self.devices[1:]:  # signs in on their other devices (phone, tablet) soon after
                seen = ts + dt.timedelta(hours=r.uniform(2, 96))
                if self.active(seen):
                    self.session(seen, [("/account", {}), ("/new", {})], device=other, logged_in=True)
        clicks = self.emails(ts)
        for click in clicks[:3]:
            if self.active(click):
                self.session(click, [("/new", {}), (f"/p/{self.products(1)[0][0]}", {})], landing={
                    "query": {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "weekly_digest"},
                    "campaign": {"source": "newsletter", "medium": "email", "name": "weekly_digest"}},
                    logged_in=self.registered and r.random() < 0.5, cid=True)
        if r.random() > 0.55:
            return  # dropped off in consideration
        # decision: cart and checkout online, or a trial in the store
        buy_in_store = r.random() < 0.4
        ts = self.at(day + r.uniform(0.5, 5))
        if not self.active(ts):
            return
        items = self.products(r.randint(1, 3))
        store = self.home_store if r.random() < 0.9 else r.choice(STORES)
        if buy_in_store:
            self.visit(ts, store, "product_trial" if r.random() < 0.6 else "visit")
            if self.in_crm and r.random() < 0.2:
                self.crm_activity(ts + dt.timedelta(hours=2), "call", "phone", outcome="answered", subject="stock question")
        else:
            pages = [("Product Added", {"product_id": s, "price": p}) for s, p in items] + [("Cart Viewed", {})]
            if r.random() < 0.7:
                pages.append(("Checkout Started", {"value": round(sum(p for _, p in items), 2)}))
            ts = self.session(ts, [(f"/p/{items[0][0]}", {}), *pages], logged_in=self.registered)
            if self.in_crm and r.random() < 0.15:
                self.crm_activity(ts + dt.timedelta(minutes=5), "chat", "chat", outcome="resolved", subject="delivery times")
        if self.in_crm:
            self.crm_contact(ts + dt.timedelta(minutes=10), lifecycle_stage="opportunity")
        if r.random() > 0.6:
            return  # abandoned
        # purchase
        ts = ts + dt.timedelta(hours=r.uniform(0.1, 40))
        if not self.active(ts):
            return
        total = round(sum(p for _, p in items), 2)
        if buy_in_store:
            ts = ts.replace(hour=max(8, min(ts.hour, 20)))
            txn = self.receipt(ts, store, "sale", items)
            if r.random() < 0.1:  # a return a few days later
                self.receipt(ts + dt.timedelta(days=r.randint(3, 20)), store, "return", items[:1], txn=f"R{txn[1:]}")
        else:
            if not self.registered:
                self.registered = True
                self.identify(ts, device)
            order_id = f"O{_hex(cfg.seed, self.index, 'order', ts.timestamp())[:10].upper()}"
            ts = self.session(ts, [("/checkout", {}), ("Order Completed", {"order_id": order_id, "revenue": total, "currency": "GBP",
                                                                         "products": [{"product_id": s} for s, _ in items]})],
                              device=device, logged_in=True)
        if self.in_crm or r.random() < 0.5:
            self.crm_contact(ts + dt.timedelta(hours=1), lifecycle_stage="customer", user_id=self.user_id if self.registered else "")
        # after the purchase: survey, tickets, churn or loyalty
        if r.random() < 0.35:
            score = r.choice([10, 9, 9, 8, 7, 6, 3, 10])
            self.crm_activity(ts + dt.timedelta(days=2), "survey_response", "web", score=str(score), subject="NPS")
        if r.random() < 0.12:
            opened = ts + dt.timedelta(days=r.uniform(1, 10))
            self.crm_activity(opened, "support_ticket_opened", "phone", subject="damaged item")
            if r.random() < 0.8:
                self.crm_activity(opened + dt.timedelta(days=r.uniform(0.2, 4)), "support_ticket_closed", "phone", outcome="resolved")
        if r.random() < 0.3:
            self.churn_at = ts + dt.timedelta(days=r.uniform(1, 5))
            if self.in_crm and r.random() < 0.3:
                self.crm_contact(self.churn_at - dt.timedelta(hours=1), is_deleted="true")
            return
        # retention: repeat purchases
        if r.random() < 0.45:
            if self.loyalty_id and self.in_crm and r.random() < 0.5:
                self.crm_activity(ts + dt.timedelta(days=1), "loyalty_signup", "in_person")
            for _ in range(r.randint(1, 3)):
                ts = ts + dt.timedelta(days=r.uniform(5, 25))
                if not self.active(ts):
                    return
                items = self.products(r.randint(1, 2))
                if r.random() < 0.5:
                    self.receipt(ts.replace(hour=max(8, min(ts.hour, 20))), self.home_store, "sale", items)
                else:
                    order_id = f"O{_hex(cfg.seed, self.index, 'order', ts.timestamp())[:10].upper()}"
                    self.session(ts, [("/", {}), ("Order Completed", {"order_id": order_id, "revenue": round(sum(p for _, p in items), 2),
                                                                     "currency": "GBP"})], logged_in=True)
            # advocacy
            if r.random() < 0.4:
                ts = ts + dt.timedelta(days=r.uniform(1, 7))
                if self.active(ts):
                    self.session(ts, [("Product Reviewed", {"product_id": items[0][0], "rating": 5})], logged_in=True)
                    if self.in_crm:
                        self.crm_activity(ts + dt.timedelta(hours=3), "referral", "web", subject="referred a friend")
                        self.crm_contact(ts + dt.timedelta(hours=4), lifecycle_stage="evangelist")


def _family_email(seed: int, owner: int) -> str:
    return f"family{owner}.{_hex(seed, 'family', owner)[:4]}@example.com"


class Writer:
    """Buffers one chunk's records by (source, kind, delivery date), then writes them as files."""

    def __init__(self, cfg: GeneratorConfig, out: Path):
        self.cfg, self.out = cfg, out
        self.records: dict[tuple[str, str, dt.date], list] = defaultdict(list)
        self.contacts: dict[tuple[dt.date, str], dict] = {}
        self.identifiers: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str]] = []
        self.stats = {"files": 0, "records": 0, "by_source": defaultdict(int)}

    def record(self, source: str, kind: str, delivery: dt.date, row: dict) -> None:
        self.records[(source, kind, delivery)].append(row)

    def contact(self, export: dt.date, state: dict) -> None:
        self.contacts[(export, state["contact_id"])] = state  # the week's last state wins

    def truth_identifier(self, kind: str, value: str, person: str) -> None:
        self.identifiers.append((kind, value, person))

    def truth_event(self, key: str, person: str) -> None:
        self.events.append((key, person))

    def _path(self, source: str, delivery: dt.date, name: str) -> Path:
        folder = self.out / "landing" / source / delivery.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        self.stats["files"] += 1
        return folder / name

    def _csv(self, path: Path, rows: list[dict], columns: list[str]) -> None:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    def flush(self, chunk: int) -> None:
        tag = f"{chunk:04d}"
        for (export, _), state in sorted(self.contacts.items()):
            self.records[("crm", "contacts", export)].append(state)
        for (source, kind, delivery), rows in sorted(self.records.items()):
            self.stats["records"] += len(rows)
            self.stats["by_source"][source] += len(rows)
            stamp = delivery.strftime("%Y%m%d")
            if kind == "segment":
                path = self._path(source, delivery, f"segment_{stamp}_{tag}.jsonl.gz")
                with gzip.GzipFile(path, "wb", mtime=0) as fh:
                    fh.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            elif kind == "sendgrid":
                if delivery.toordinal() % 2:  # JSON lines on odd days, JSON arrays on even days
                    self._path(source, delivery, f"sendgrid_{stamp}_{tag}.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
                else:
                    self._path(source, delivery, f"sendgrid_{stamp}_{tag}.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
            else:
                columns = list(rows[0])
                for row in rows[1:]:
                    columns += [c for c in row if c not in columns]
                self._csv(self._path(source, delivery, f"{kind}_{stamp}_{tag}.csv"), rows, columns)
        truth = self.out / "truth"
        truth.mkdir(parents=True, exist_ok=True)
        with (truth / f"identifiers_{tag}.csv").open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["identifier_type", "identifier", "person_id"])
            w.writerows(sorted(set(self.identifiers)))
        with (truth / f"events_{tag}.csv").open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["event_key", "person_id"])
            w.writerows(sorted(set(self.events)))
        self.records.clear()
        self.contacts.clear()
        self.identifiers.clear()
        self.events.clear()


def _broken_records(cfg: GeneratorConfig, writer: Writer) -> None:
    """A handful of records every real feed has, so the sample exercises the quarantine."""
    day = cfg.start + dt.timedelta(days=min(3, cfg.days - 1))
    writer.record("web", "segment", day, {"type": "page", "messageId": f"m-broken-future-{cfg.seed}", "anonymousId": "broken",
                                          "timestamp": "2099-01-01T00:00:00Z", "context": {"page": {"url": SITE + "/"}}})
    writer.record("web", "segment", day, {"type": "track", "event": "Product Viewed", "messageId": f"m-broken-notime-{cfg.seed}",
                                          "anonymousId": "broken"})
    writer.record("store", "transactions", day, {"transaction_id": "TBROKEN", "line_number": 1, "store_id": "S01",
                                                 "occurred_at": f"{day.isoformat()} 12:00:00", "loyalty_id": "", "receipt_email": "",
                                                 "receipt_phone": "", "sku": "SKU0001", "quantity": 1, "unit_price": "-4.99",
                                                 "currency": "GBP", "transaction_type": "sale"})


def generate(cfg: GeneratorConfig, out: Path) -> dict:
    out = Path(out)
    writer = Writer(cfg, out)
    stores = writer._path("store", cfg.start, "stores.csv")
    writer._csv(stores, [dict(zip(["store_id", "name", "region", "timezone"], s)) for s in STORES], ["store_id", "name", "region", "timezone"])
    _broken_records(cfg, writer)
    for chunk_start in range(0, cfg.customers, cfg.chunk_size):
        for index in range(chunk_start + 1, min(cfg.customers, chunk_start + cfg.chunk_size) + 1):
            Person(cfg, index, writer).simulate()
        writer.flush(chunk_start // cfg.chunk_size)
    stats = writer.stats
    stats["by_source"] = dict(stats["by_source"])
    return stats

