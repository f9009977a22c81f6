"""POST /_sandbox/requests/verify: which recorded requests match a pattern, whether as many as expected did, and
when not, the closest requests with a field-by-field difference (WireMock's near misses).

A pattern is any of: vendor, operation, method, status, path (exact) or pathMatches (a regular expression over the
whole path, run by RE2: see _regex), query (each parameter given, equal), headers (each header given, equal; names
in any case), body (a JSON value: `bodyMatch` equal, the default, or subset: every field given present and equal,
recursively, arrays element by element) and bodyPaths (JSON Path expressions, RFC 9535 syntax with filters, by
jsonpath-ng: some value at the path equals `equals`, or matches the regular expression `matches`, or, with neither,
the path exists; `exists: false`, that nothing is there; jsonpath-ng's own regular expressions, `=~` and `sub()`,
are refused: see _json_path). Every criterion given must hold. The journal masks secrets, and so is the pattern: an
expected credential header or query parameter is compared by its fingerprint.

Count: `count` exactly, `atLeast`, or (neither) at least one.
"""
from __future__ import annotations

import json
import time
import warnings
from urllib.parse import parse_qsl, urlsplit

import re2

from sandbox.core.masking import mask, secret_query_parameter
from sandbox.core.validation import Unreadable, parse_json

from .errors import ControlError, error_for_status

MISSING = "<missing>"
NEAR_MISSES = 3  # the closest requests a failed verification shows
DIFFERENCES = 20  # at most this many differences per near miss
MATCHES_SHOWN = 10  # the requests shown when more matched than expected
VALUES_SHOWN = 5  # of the values a JSON Path found, in a difference
SHOWN_CHARACTERS = 200  # of each, when longer

# A client's regular expression runs on RE2 (google-re2), never on Python's re: RE2 does not backtrack, so its time
# is linear in the text, where re takes exponential time on a pattern such as (a+)+$ against a long path and holds
# the worker. Linear in the size of the compiled pattern too: at most 512 characters (the spec), compiling to at
# most PROGRAM_SIZE instructions (.{0,200} is about 1,800, \pL+ 1,201, ORD\d+ a dozen). At that size the worst
# pattern measured takes about 12 ms over a path of 2,048 characters, the longest the journal keeps.
PROGRAM_SIZE = 2000
# What else a pattern's cost grows with is bounded too. A JSON Path descends (`..`) at most once: each descent
# nested in another multiplies the walk by the body's depth ($..*..* took jsonpath-ng 300 ms over a body of 2 KB
# nested 300 deep, and a third descent would take minutes, per recorded request; $..* takes 2 ms). And a
# verification stops after WORK_SECONDS of checking: sixteen $..* each matching an expression, over bodies of 14 KB,
# cost 50 ms a recorded request, 50 s over a full journal; no pattern may hold its process longer than this. The
# clock is read between criteria and every CLOCK_EVERY values a JSON Path found, so a verification stops within a
# criterion's walk of one body (a few ms) of its budget, not a whole request's (hundreds of ms).
DESCENTS = 1
WORK_SECONDS = 2.0
CLOCK_EVERY = 64
_RE2 = re2.Options()
_RE2.log_errors = False  # a bad pattern is the client's 400, not a line on the server's stderr


class TooCostly(ControlError):
    status = 400

    def __init__(self, checked: int, recorded: int):
        super().__init__(f"This pattern was stopped after {WORK_SECONDS:g} s of checking, {checked:,} of the "
                         f"{recorded:,} recorded requests done: check fewer requests (`since`, or DELETE "
                         "/_sandbox/requests before the calls you verify), or give fewer or simpler bodyPaths "
                         "(a JSON Path that names its fields, e.g. $.items[*].code, walks less than $..*)", [])


class Pattern:
    def __init__(self, body: dict, secret_headers: set[str]):
        self.spec = body
        self.checks = []  # (name, function(entry) -> list of differences)
        for field in ("vendor", "operation", "method", "status"):
            if body.get(field) is not None:
                self.checks.append((field, _equal_field(field, body[field], upper=field == "method")))
        if body.get("path") is not None:
            self.checks.append(("path", _path_equal(body["path"])))
        if body.get("pathMatches") is not None:
            self.checks.append(("pathMatches", _path_matches(_regex(body["pathMatches"], "pathMatches"))))
        for name, value in (body.get("query") or {}).items():
            expected = mask(value) if secret_query_parameter(name) else value
            self.checks.append((f"query.{name}", _query(name, expected)))
        for name, value in (body.get("headers") or {}).items():
            expected = mask(value) if name.lower() in secret_headers else value
            self.checks.append((f"headers.{name}", _header(name, expected)))
        if "body" in body:
            self.checks.append(("body", _body(body["body"], body.get("bodyMatch", "equal"))))
        for number, item in enumerate(body.get("bodyPaths") or []):
            self.checks.append((f"bodyPaths[{number}]", _body_path(item, number)))
        if not self.checks:
            self.checks.append(("any", lambda entry: []))

    def differences(self, entry: dict, deadline: float = float("inf")) -> tuple[int, list[dict]]:
        """How many criteria the entry meets, and the differences of those it does not; _OutOfTime past the
        deadline."""
        met, found = 0, []
        recorded = _Recorded(entry, deadline)
        for _, check in self.checks:
            recorded.in_time()
            problems = check(recorded)
            if problems:
                found.extend(problems)
            else:
                met += 1
        return met, found


def verify(entries: list[dict], body: dict, secret_headers: set[str]) -> tuple[bool, dict]:
    pattern = Pattern(body, secret_headers)
    deadline = time.monotonic() + WORK_SECONDS
    scored = []
    try:
        for entry in entries:
            scored.append((entry, *pattern.differences(entry, deadline)))
    except _OutOfTime:
        raise TooCostly(len(scored), len(entries)) from None
    matched = [entry for entry, _, problems in scored if not problems]
    count = len(matched)
    if body.get("count") is not None:
        expected, verified = {"count": body["count"]}, count == body["count"]
    else:
        at_least = 1 if body.get("atLeast") is None else body["atLeast"]
        expected, verified = {"atLeast": at_least}, count >= at_least
    result = {"verified": verified, "count": count, "expected": expected}
    if verified:
        return True, result
    if count < expected.get("count", expected.get("atLeast", 0)):
        misses = sorted(((e, met, problems) for e, met, problems in scored if problems),
                        key=lambda item: (-item[1], -item[0].get("id", 0)))[:NEAR_MISSES]
        result["nearMisses"] = [{"request": summary(entry), "met": met, "of": len(pattern.checks),
                                 "differences": problems[:DIFFERENCES]} for entry, met, problems in misses]
    else:
        result["matches"] = [summary(entry) for entry in matched[-MATCHES_SHOWN:]]
    return False, result


class _OutOfTime(Exception):
    """The verification's work budget is spent (TooCostly, once the count of requests done is known)."""


class _Recorded:
    """A journal entry as the criteria see it: its fields, its body parsed once for them all, and the clock."""

    __slots__ = ("entry", "deadline", "_body")

    def __init__(self, entry: dict, deadline: float):
        self.entry, self.deadline, self._body = entry, deadline, None

    def get(self, field: str, default=None):
        return self.entry.get(field, default)

    @property
    def body(self) -> tuple:
        """(the parsed body, None) or (MISSING, why it cannot be compared)."""
        if self._body is None:
            self._body = _parsed_body(self.entry)
        return self._body

    def in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OutOfTime()


def summary(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("id", "time", "vendor", "operation", "method", "path", "status")}


# -- criteria ----------------------------------------------------------------------------------------------
def _equal_field(field: str, expected, upper: bool = False):
    expected = expected.upper() if upper else expected

    def check(entry):
        actual = entry.get(field)
        if (actual.upper() if upper and isinstance(actual, str) else actual) == expected:
            return []
        return [{"field": field, "expected": expected, "actual": actual}]
    return check


def _path_of(entry) -> str:
    return urlsplit(entry.get("path", "")).path


def _path_equal(expected: str):
    def check(entry):
        actual = _path_of(entry)
        return [] if actual == expected else [{"field": "path", "expected": expected, "actual": actual}]
    return check


def _path_matches(regex):
    def check(entry):
        actual = _path_of(entry)
        return [] if regex.fullmatch(actual) else [{"field": "path", "expected": f"matches {regex.pattern}",
                                                     "actual": actual}]
    return check


def _query(name: str, expected: str):
    def check(entry):
        values = [v for k, v in parse_qsl(urlsplit(entry.get("path", "")).query, keep_blank_values=True) if k == name]
        if expected in values:
            return []
        return [{"field": f"query.{name}", "expected": expected,
                 "actual": values[0] if len(values) == 1 else (values or MISSING)}]
    return check


def _header(name: str, expected: str):
    lowered = name.lower()

    def check(entry):
        actual = next((v for k, v in (entry.get("headers") or {}).items() if k.lower() == lowered), MISSING)
        return [] if actual == expected else [{"field": f"headers.{name}", "expected": expected, "actual": actual}]
    return check


def _parsed_body(entry):
    text = entry.get("body") or ""
    if entry.get("truncated") and len(text) >= 16_384:
        return MISSING, "the recorded body was cut to 16,384 characters: not comparable"
    # Read as the sandbox reads request bodies (strict JSON): a body any client sent was journaled, including what
    # no JSON value can hold (a lone surrogate, NaN, nesting past MAX_DEPTH); such a body is a difference of its
    # entry, never a value the answer cannot encode (a "\ud800" body made every body criterion of its world a 500).
    try:
        return parse_json(text.encode("utf-8", "surrogatepass")), None
    except Unreadable as unreadable:
        return MISSING, f"not comparable: {unreadable}"
    except RecursionError:
        return MISSING, "nested too deep to compare"
    except ValueError:
        return MISSING, "not JSON" if text else "no body"


def _body(expected, mode: str):
    def check(entry):
        actual, why = entry.body
        if why:
            return [{"field": "body", "expected": expected, "actual": why}]
        found = []
        _compare(expected, actual, "body", mode == "subset", found)
        return found
    return check


def _compare(expected, actual, where: str, subset: bool, found: list) -> None:
    if len(found) >= DIFFERENCES:
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key not in actual:
                found.append({"field": f"{where}.{key}", "expected": value, "actual": MISSING})
            else:
                _compare(value, actual[key], f"{where}.{key}", subset, found)
        if not subset:
            for key in actual.keys() - expected.keys():
                found.append({"field": f"{where}.{key}", "expected": MISSING, "actual": actual[key]})
        return
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (value, other) in enumerate(zip(expected, actual)):
            _compare(value, other, f"{where}[{index}]", subset, found)
        return
    if not _same(expected, actual):
        found.append({"field": where, "expected": expected, "actual": actual})


def _same(a, b) -> bool:
    """JSON equality: 1 and 1.0 are the same number, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _body_path(item: dict, number: int):
    expression = _json_path(item["path"], number)
    regex = _regex(item["matches"], f"bodyPaths[{number}].matches") if "matches" in item else None
    where = f"body {item['path']}"

    def check(entry):
        actual, why = entry.body
        if why:
            return [{"field": where, "expected": _wanted(item), "actual": why}]
        try:
            values = [m.value for m in expression.find(actual)]
        except Exception as error:  # noqa: BLE001 - jsonpath-ng raises whatever Python does on the values it meets
            # (TypeError sorting a string with [\field], AssertionError for the root's `parent`): for this request,
            # a criterion that does not hold, not a 500 for the whole verification.
            reason = f"the JSON Path does not apply to this body ({type(error).__name__}: {error})"
            return [{"field": where, "expected": _wanted(item), "actual": _cut(reason)}]
        if "equals" in item:
            ok = any(_same(item["equals"], v) for v in _clocked(values, entry))
        elif regex is not None:
            ok = any(isinstance(v, str) and regex.fullmatch(v) for v in _clocked(values, entry))
        else:
            ok = bool(values) == item.get("exists", True)
        if ok:
            return []
        return [{"field": where, "expected": _wanted(item), "actual": _found(values)}]
    return check


def _clocked(values: list, entry: _Recorded):
    for number, value in enumerate(values):
        if number % CLOCK_EVERY == 0:
            entry.in_time()
        yield value


def _found(values: list):
    """What a JSON Path found, as a difference shows it: at most VALUES_SHOWN values, each value whose JSON text is
    longer than SHOWN_CHARACTERS as that text cut short (a path such as $..* finds every value of a body, each again
    inside its parents: whole, they made a near miss hundreds of MB)."""
    if not values:
        return MISSING
    shown = [_cut(value) for value in values[:VALUES_SHOWN]]
    if len(values) > VALUES_SHOWN:
        shown.append(f"... and {len(values) - VALUES_SHOWN:,} more")
    return shown[0] if len(values) == 1 else shown


def _cut(value):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return value if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


def _wanted(item: dict):
    if "equals" in item:
        return item["equals"]
    if "matches" in item:
        return f"matches {item['matches']}"
    return "present" if item.get("exists", True) else MISSING


def _json_path(text: str, number: int):
    """The parsed path. jsonpath-ng runs the regular expressions of its `=~` filters and `sub()` with Python's re,
    whose backtracking a hostile pattern turns into a hang: a path that holds one is refused, `matches` being the
    way to match a value. So is its arithmetic, which a verification has no use for and whose `*` repeats a string
    or an array as many times as asked, a gigabyte for each recorded request."""
    from jsonpath_ng import Descendants
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse
    from jsonpath_ng.ext.arithmetic import Operation
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.ext.string import Sub

    try:
        with warnings.catch_warnings():
            # jsonpath-ng deprecates its union (|), which is refused below with a message saying why.
            warnings.simplefilter("ignore", DeprecationWarning)
            expression = parse(text)
    except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError) as error:
        raise error_for_status(400, f"bodyPaths[{number}].path is not a JSON Path ({error}); e.g. $.voucherCode, "
                                    "$.data[0].status, $.items[?(@.status == 'ACTIVE')].id", []) from None
    if any(isinstance(node, Sub) or (isinstance(node, Expression) and node.op == "=~") for node in _nodes(expression)):
        raise error_for_status(400, f"bodyPaths[{number}].path holds a regular expression (=~ or sub()), which the "
                                    "sandbox does not run inside a JSON Path: select the values with the path and "
                                    f"give the expression as bodyPaths[{number}].matches, e.g. "
                                    '{"path": "$.items[*].code", "matches": "GOLD-.*"}', [])
    descents = sum(isinstance(node, Descendants) for node in _nodes(expression))
    if descents > DESCENTS:
        raise error_for_status(400, f"bodyPaths[{number}].path descends (..) {descents} times, at most {DESCENTS}: a "
                                    "descent inside another's results walks every body once for each value found; "
                                    "name the fields on the way instead, e.g. $..items[*].code, not $..items..code", [])
    if any(isinstance(node, Operation) for node in _nodes(expression)):
        raise error_for_status(400, f"bodyPaths[{number}].path computes (+, -, *, /), which a verification does not "
                                    "do: select values only (a field name with a minus needs no spaces around it, "
                                    "e.g. $.voucher-code)", [])
    for node in _nodes(expression):
        if not isinstance(node, _selecting()):
            what = _REPEATING.get(type(node).__name__, type(node).__name__)
            raise error_for_status(400, f"bodyPaths[{number}].path uses {what}, which a verification does not run: "
                                        "it selects values more than once, and each repetition multiplies the work; "
                                        "give separate bodyPaths instead", [])
        chosen = getattr(node, "fields", None) or getattr(node, "indices", None) or ()
        # An index counted from the end may name one counted from the start again: [0,-1] of a one-item list.
        if len(set(chosen)) != len(chosen) or (len(chosen) > 1 and any(isinstance(i, int) and i < 0 for i in chosen)):
            raise error_for_status(400, f"bodyPaths[{number}].path may name the same field or index twice in one "
                                        f"bracket ({', '.join(map(str, chosen))}): each repetition multiplies the "
                                        "work; name each once, and count from the end (-1) only alone", [])
    return expression


# What a JSON Path may be made of: steps that each select distinct values of the body (so a path's results are at most
# the body's values, found in one walk), filters and the functions on what they select. Refused, by their syntax:
_REPEATING = {"_Union": "a union (|)", "_Intersect": "an intersection (&)", "Parent": "`parent`",
              "Where": "`where`", "WhereNot": "`wherenot`"}


def _selecting() -> tuple:
    from jsonpath_ng.ext.filter import Expression, Filter
    from jsonpath_ng.ext.iterable import Keys, Len, SortedThis
    from jsonpath_ng.jsonpath import Child, Descendants, Fields, Index, Root, Slice, This, Wildcard

    return Root, This, Child, Fields, Index, Slice, Wildcard, Descendants, Filter, Expression, Len, SortedThis, Keys


def _nodes(root):
    """Every node of a parsed JSON Path: its attributes that are nodes, or lists and tuples holding some."""
    from jsonpath_ng import JSONPath

    pending = [root]
    while pending:
        value = pending.pop()
        if isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, JSONPath):
            yield value
            pending.extend(vars(value).values())


def _regex(text: str, where: str):
    try:
        regex = re2.compile(text, _RE2)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if isinstance(error.args[0], bytes) else error.args[0]
        raise error_for_status(400, f"{where} is not a regular expression RE2 can run ({reason}): RE2 reads Python's "
                                    r"syntax without lookaround ((?=, (?!, (?<=) or backreferences (\1), e.g. ORD\d+",
                               []) from None
    if regex.programsize > PROGRAM_SIZE:
        raise error_for_status(400, f"{where} is too large once compiled ({regex.programsize:,} instructions, at most "
                                    f"{PROGRAM_SIZE:,}): use smaller repetition counts, e.g. .* instead of "
                                    ".{0,255}", [])
    return regex
