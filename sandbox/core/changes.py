"""What a write changed, record by record, before and after, kept with its journal entry so that the demo page can
show the record as it was and as it is, the changed fields marked (issue 31).

A vendor operation that writes sees its world's store through `Recording`, which notes each record's state before
its first write in the request (read from the store in the same transaction, so it is exactly what was replaced)
and its state after the last. A read-only request is never recorded. Records of credential collections (API keys,
tokens) are left out: the journal never shows a secret. Bounded: the first CHANGES_KEPT records, CHANGES_LIMIT
characters of records' JSON in all; past either, a change keeps only the names of its changed fields (`cut`).
"""
from __future__ import annotations

from ..storage.codec import decode, encode
from ..storage.store import internal

CHANGES_KEPT = 10
CHANGES_LIMIT = 8_192  # characters of before-and-after JSON kept per entry, in all
FIELDS_KEPT = 50  # changed field paths listed per record
_GONE = object()  # a record deleted by the request


class Recording:
    """The world's store as one write sees it: every call passes through; put and delete note what they change."""

    def __init__(self, store, hidden: set[str]):
        self._store = store
        self._hidden = hidden  # collections whose records are credentials
        self._changes: dict[tuple[str, str], list] = {}  # (collection, key) -> [before, after], in order of writing

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put(self, collection: str, key: str, record: dict) -> None:
        self._before(collection, key)
        self._store.put(collection, key, record)
        self._after(collection, key, record)

    def put_all(self, collection: str, key_field: str, records) -> None:
        records = list(records)
        for record in records:
            self._before(collection, str(record[key_field]))
        self._store.put_all(collection, key_field, records)
        for record in records:
            self._after(collection, str(record[key_field]), record)

    def delete(self, collection: str, key: str) -> bool:
        self._before(collection, key)
        deleted = self._store.delete(collection, key)
        self._after(collection, key, _GONE)
        return deleted

    def _recorded(self, collection: str) -> bool:
        return not internal(collection) and collection not in self._hidden

    def _before(self, collection: str, key: str) -> None:
        if self._recorded(collection) and (collection, key) not in self._changes:
            self._changes[(collection, key)] = [self._store.get(collection, key), None]

    def _after(self, collection: str, key: str, record) -> None:
        if self._recorded(collection):
            # A copy as written: the operation may go on changing the dict it passed
            self._changes[(collection, key)][1] = None if record is _GONE else decode(encode(record))

    def changes(self, mask) -> list[dict]:
        """The journal's view: each changed record (its collection, key, before and after; null before: created,
        null after: deleted) with the paths of the fields that differ, secrets masked by `mask` (a JSON text's),
        within the bounds above."""
        kept, room = [], CHANGES_LIMIT
        for (collection, key), (before, after) in list(self._changes.items())[:CHANGES_KEPT]:
            if before == after:
                continue
            change = {"collection": collection, "key": key, "changed": changed_fields(before, after)[:FIELDS_KEPT]}
            shown = mask(encode({"before": before, "after": after}))
            if len(shown) <= room:
                change.update(decode(shown))  # masking replaces whole string values: still JSON
                room -= len(shown)
            else:
                change["cut"] = True
            kept.append(change)
        return kept


def changed_fields(before, after, prefix: str = "") -> list[str]:
    """The dotted paths at which two records differ (a field added, removed or changed; lists compared whole)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [prefix] if before != after and prefix else sorted(set(before or {}) | set(after or {}))
    paths = []
    for name in sorted(set(before) | set(after), key=lambda n: (n not in before, n)):
        path = f"{prefix}.{name}" if prefix else name
        if name not in before or name not in after:
            paths.append(path)
        elif before[name] != after[name]:
            paths += changed_fields(before[name], after[name], path)
    return paths
