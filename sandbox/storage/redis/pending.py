"""The writes of an open Redis transaction, held in the process until it commits.

Holding them is what makes a transaction all or nothing on Redis: on success they go to the server in one script
(scripts.COMMIT) that applies every one or none; on an exception they are dropped, and nothing was written.
Meanwhile the transaction's own reads must see them: `PendingWrites` keeps, besides the script's instructions, what
each collection and log looks like after them, for RedisStore to lay over what the server holds.
"""
from __future__ import annotations

from ..store import internal


class PendingWrites:
    def __init__(self):
        self._instructions: list[list] = []
        self.records: dict[str, dict[str, str | None]] = {}  # collection -> key -> record text (None: deleted)
        self._moved: dict[str, set[str]] = {}  # collection -> keys deleted here: put again, they go last
        self._logs: dict[str, tuple[list[str], int | None]] = {}  # name -> (entries appended, keep)
        self._logs_cleared: set[str] = set()
        self._cleared = False  # clear(): nothing the server held counts any more
        self._vendor_cleared = False  # load(): the vendor collections and logs it held do not
        self._counters: dict[str, list] = {}  # name -> its 'count' instruction, whose last item is the value

    # -- what the transaction's reads see --------------------------------------------------------------------
    def hides(self, collection: str) -> bool:
        """Whether what the server holds of the collection no longer counts (cleared in this transaction)."""
        return self._cleared or (self._vendor_cleared and not internal(collection))

    def touches(self, collection: str) -> bool:
        return collection in self.records or self.hides(collection)

    def record(self, collection: str, key: str) -> tuple[bool, str | None]:
        """(known here, its text or None): when not known here, the server's copy stands."""
        pending = self.records.get(collection, {})
        if key in pending:
            return True, pending[key]
        return self.hides(collection), None

    def overlay(self, collection: str, stored: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(key, text) of the collection's records in insertion order, given the server's (ignored when hidden)."""
        pending = self.records.get(collection, {})
        moved = self._moved.get(collection, set())
        result, seen = [], set()
        for key, text in ([] if self.hides(collection) else stored):
            seen.add(key)
            if key not in pending:
                result.append((key, text))
            elif pending[key] is not None and key not in moved:
                result.append((key, pending[key]))
        result += [(key, text) for key, text in pending.items()
                   if text is not None and (key not in seen or key in moved)]
        return result

    def hides_log(self, name: str) -> bool:
        return self._cleared or name in self._logs_cleared or (self._vendor_cleared and not internal(name))

    def touches_log(self, name: str) -> bool:
        return name in self._logs or self.hides_log(name)

    def log_overlay(self, name: str, stored: list[str]) -> list[str]:
        appended, keep = self._logs.get(name, ([], None))
        texts = ([] if self.hides_log(name) else stored) + appended
        return texts[-keep:] if keep else texts

    def log_names(self) -> list[str]:
        return list(self._logs)

    def changes_collections(self) -> bool:
        """Whether the transaction wrote or cleared any record (collections() must then look at every one)."""
        return bool(self.records) or self._cleared or self._vendor_cleared

    def counting(self, name: str) -> bool:
        return name in self._counters

    @property
    def cleared(self) -> bool:
        return self._cleared

    @property
    def replaces(self) -> bool:
        """Whether the transaction replaces its world's data (a reset's clear, an import's)."""
        return self._cleared or self._vendor_cleared

    # -- the writes ----------------------------------------------------------------------------------------
    def put(self, collection: str, key: str, text: str, index_keys: list[str]) -> None:
        pending = self.records.setdefault(collection, {})
        if key in self._moved.get(collection, ()) and pending.get(key) is None:
            pending.pop(key, None)  # deleted here, so it goes last
        pending[key] = text
        self._instructions.append(["put", collection, key, text, "\n".join(index_keys)])

    def delete(self, collection: str, key: str) -> None:
        self.records.setdefault(collection, {})[key] = None
        self._moved.setdefault(collection, set()).add(key)
        self._instructions.append(["del", collection, key])

    def append(self, name: str, text: str, keep: int | None, number: str | None) -> None:
        appended, _ = self._logs.get(name, ([], None))
        self._logs[name] = (appended + [text], keep)
        self._instructions.append(["log", name, text, "" if keep is None else keep, number or ""])

    def clear_log(self, name: str) -> None:
        self._logs.pop(name, None)
        self._logs_cleared.add(name)
        self._instructions.append(["clearlog", name])

    def next_value(self, name: str, stored: int | None) -> int:
        """The counter's next value; `stored` is the server's value (None: cleared here, so no check at commit),
        needed the first time a transaction counts with this name."""
        instruction = self._counters.get(name)
        if instruction is None:
            instruction = self._counters[name] = ["count", name, "" if stored is None else str(stored), stored or 0]
            self._instructions.append(instruction)
        instruction[-1] += 1
        return instruction[-1]

    def clear(self, pattern_prefix: str) -> None:
        """What was written before in this transaction goes with the rest: the clear is all that remains of it."""
        self.__init__()
        self._cleared = True
        self._instructions.append(["clear", pattern_prefix])

    def clear_vendor_data(self, pattern_prefix: str) -> None:
        for name in [n for n in self.records if not internal(n)]:
            del self.records[name]
            self._moved.pop(name, None)
        for name in [n for n in self._logs if not internal(n)]:
            del self._logs[name]
        self._vendor_cleared = True
        self._instructions.append(["clearvendor", pattern_prefix])

    def instructions(self) -> list:
        """The script's arguments after its first three, in order."""
        return [item for instruction in self._instructions for item in instruction]

    def steps(self, arguments: int):
        """The instructions as a commit in steps sends them (RedisStore._apply_in_steps), in order: ("clear" or
        "clearvendor", its MATCH pattern) for a clear, else ("step", arguments) of about `arguments` items, the
        last of all ("last", arguments), perhaps empty."""
        chunk = []
        for instruction in self._instructions:
            if instruction[0] in ("clear", "clearvendor"):
                if chunk:
                    yield "step", chunk
                    chunk = []
                yield instruction[0], instruction[1]
                continue
            chunk += instruction
            if len(chunk) >= arguments:
                yield "step", chunk
                chunk = []
        yield "last", chunk
