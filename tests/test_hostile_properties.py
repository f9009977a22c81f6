"""Hostile input as properties (issue 14), over every vendor and control operation and every backend: Hypothesis
sends arbitrary JSON values, arbitrary bytes, hostile strings and numbers and oversized parts, with working
credentials so the request reaches validation and the handlers. Whatever it sends:
- no 5xx (no fault is asked for: rules are cleared before each request, and the fault header is never sent);
- a 4xx leaves the state exactly as it was (the whole export compared);
- a 2xx leaves every stored record valid (the export, checked against specs/sandbox.yaml's record shapes in strict
  mode, would be a 500 otherwise);
- the sandbox answers a normal request right after.
"""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import CAPILLARY, FABRIC, bearer, strict_app

CREDENTIALS = {"returning-ai": bearer(), "fabric": {**FABRIC, "x-fabric-channel-id": "12"}, "capillary": CAPILLARY,
               "_sandbox": {}}
DOCUMENTED = {"ORD202641612055614747", "507f1f77bcf86cd799439012", "614b58924e92f6861ac9d43b", "109943742",
              "sTDVyi", "returning-ai", "fabric", "capillary"}
PATH_VALUES = {"purchaseHistoryID": "ORD202641612055614747", "redemptionId": "614b58924e92f6861ac9d43b",
               "id": "109943742", "couponId": "614b58924e92f6861ac9c001", "collection": "cap_customers",
               "name": "fabric", "ruleId": "1"}

# Strings a hostile client sends: control characters, lone surrogates as text, homoglyph digits, huge and empty.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "0", "-1", "1e309", "NaN", "\uff11\uff12", "1_000", "../../etc", "%00", "\u202e",
                     "a" * 5000, *sorted(DOCUMENTED)]),
)
HOSTILE_NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                            st.sampled_from([2**63, -2**63 - 1, 10**30, 1e308, -0.0, 0]))
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), HOSTILE_NUMBERS, HOSTILE_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(HOSTILE_TEXT, children, max_size=5)),
    max_leaves=20,
)


def _operations():
    app = strict_app(size=5)
    found = []
    for name, spec in app.extensions["sandbox"].specs.items():
        mount = "_sandbox" if name == "sandbox" else name
        for op in spec.operations:
            found.append((mount, spec.base_paths[0], op))
    return found


OPERATIONS = _operations()


def documented_bodies(operation) -> list[dict]:
    """The spec's own request examples: mutated one field at a time, they reach the rules behind the schema."""
    media = operation.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    return [b for b in found if isinstance(b, dict)]


def body_fields(operation) -> list[str]:
    """The documented top-level body fields, so that generated objects often reach the rules behind the schema."""
    schema = operation.raw.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    return sorted(schema.get("properties", {}))


@st.composite
def hostile_requests(draw, operations):
    mount, base, op = draw(st.sampled_from(operations))
    def segment(match):
        known = PATH_VALUES.get(match.group(1))
        hostile = HOSTILE_TEXT.filter(lambda t: t and not set(t) & set("/?#"))
        return draw(st.one_of(st.just(known), st.just(known), st.just(known), hostile) if known else hostile)

    path = base + re.sub(r"{([^}]+)}", segment, op.path)
    query = draw(st.dictionaries(st.sampled_from([p.name for p in op.parameters if p.location == "query"] or ["q"]),
                                 st.one_of(HOSTILE_TEXT, HOSTILE_NUMBERS.map(str)), max_size=4))
    headers = dict(CREDENTIALS[mount])
    delay = draw(st.sampled_from([None] * 6 + ["0", "1_0", "\uff10", "-1", "99999999", "1e3"]))
    if delay is not None:
        headers["X-Sandbox-Delay"] = delay
    fields = body_fields(op)
    examples = documented_bodies(op)
    kind = draw(st.sampled_from(["json", "object", "bytes", "none", "oversized"] + ["example"] * (6 if examples else 0)))
    if kind == "example":
        example = dict(draw(st.sampled_from(examples)))
        if example and draw(st.booleans()):
            example[draw(st.sampled_from(sorted(example)))] = draw(JSON_VALUES)
        body = json.dumps(example).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "object":
        keys = st.sampled_from(fields) if fields else HOSTILE_TEXT
        body = json.dumps(draw(st.dictionaries(keys, JSON_VALUES, max_size=6))).encode()
    elif kind == "bytes":
        body = draw(st.one_of(st.binary(max_size=200), st.sampled_from([
            b'{"a": NaN}', b'{"a": 1e999}', b'{"a": "\\ud800"}', b'[' * 2000, b'\xff\xfe{}', b'{"a":1}garbage'])))
    elif kind == "oversized":
        body = b'{"x": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    else:
        body = b""
    if body:
        headers["Content-Type"] = draw(st.sampled_from(["application/json"] * 8 + ["text/plain", "application/xml"]))
    return op.method, path, query, headers, body


def _check(client, request):
    method, path, query, headers, body = request
    client.delete("/_sandbox/faults")  # no rule may fire: a 5xx can only be the sandbox's own failure
    before = client.get("/_sandbox/state/export")
    assert before.status_code == 200
    r = client.open(path, method=method, query_string=query, headers=headers, data=body)
    text = r.get_data(as_text=True)
    assert r.status_code < 500, f"{method} {path} -> {r.status_code}: {text[:500]}"
    after = client.get("/_sandbox/state/export")
    assert after.status_code == 200, f"after {method} {path}: the state no longer exports: {after.get_data()[:500]}"
    if 400 <= r.status_code < 500:
        assert after.get_json() == before.get_json(), f"{method} {path} -> {r.status_code} changed the state"
    assert client.get("/_sandbox/health").status_code == 200


VENDOR_OPERATIONS = [o for o in OPERATIONS if o[0] != "_sandbox"]
# The control API, less what only re-seeds or swaps whole worlds (covered by their own tests, and slow per example).
CONTROL_OPERATIONS = [o for o in OPERATIONS if o[0] == "_sandbox" and o[2].operation_id not in (
    "resetSandbox", "createWorkspace", "loadScenario")]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture
def fuzzed_app(backend_settings):
    return strict_app(seed=2026, size=5, publisher_timeout=0.05, journal_size=50, **backend_settings)


@FUZZ
@given(request=hostile_requests(VENDOR_OPERATIONS))
def test_any_vendor_request_keeps_every_invariant(fuzzed_app, request):
    _check(fuzzed_app.test_client(), request)


@FUZZ
@given(request=hostile_requests(CONTROL_OPERATIONS))
def test_any_control_request_keeps_every_invariant(fuzzed_app, request):
    _check(fuzzed_app.test_client(), request)
