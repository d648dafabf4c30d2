"""The data dictionary (docs/data-dictionary.md) read back as data: one place documents each mart
for analysts, and the Dagster UI shows the same sentence and column meanings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from journey_analytics.settings import PROJECT_ROOT

DICTIONARY = PROJECT_ROOT / "docs" / "data-dictionary.md"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str


@dataclass(frozen=True)
class TableEntry:
    table: str  # schema.table
    summary: str  # one sentence
    columns: tuple[Column, ...]


@cache
def entries() -> dict[str, TableEntry]:
    text = DICTIONARY.read_text(encoding="utf-8")
    found: dict[str, TableEntry] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        table = heading.strip()
        if not re.fullmatch(r"[a-z_]+\.[a-z_]+", table):
            continue
        paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
        rows = re.findall(r"^\| ([a-z_0-9]+) \| ([A-Z]+) \| (.+) \|$", body, flags=re.M)
        found[table] = TableEntry(table, " ".join(paragraphs[0].split()), tuple(Column(n, t, m.strip()) for n, t, m in rows))
    return found
