"""What every vendor's `seed()` does with its records, in one shape.

World.reset hands each vendor's seed() its own copy of fixtures/<vendor>.yaml (a dict of sections, each a list
of records) and the world's credential suffix. A seed() first stores the fixture records, the suffix appended to
the credentials among them (`put_fixtures`), then generates its Faker records and stores those (`put_each`).
"""
from __future__ import annotations

from typing import Iterable


def put_fixtures(store, fixtures: dict, sections: Iterable[tuple[str, str, str]], suffix: str = "",
                 credentials: dict[str, tuple[str, ...]] | None = None) -> None:
    """Store the fixture records: `sections` lists (collection, key field, fixtures section), in the order they
    are written. `credentials` names, per section, the fields a workspace's `suffix` is appended to, so that its
    credentials differ from the default world's; the fixture records themselves are changed (they are the
    world's own copy), so what seed() does with them afterwards sees the suffixed values."""
    for section, fields in (credentials or {}).items():
        for record in fixtures[section]:
            for field in fields:
                record[field] += suffix
    put_each(store, ((collection, key, fixtures[section]) for collection, key, section in sections))


def put_each(store, tables: Iterable[tuple[str, str, list]]) -> None:
    """store.put_all for each (collection, key field, records), in order."""
    for collection, key, records in tables:
        store.put_all(collection, key, records)
