"""`run.py verify`: assert, from a CI job, what a client sent to a running sandbox, and say readably what came
closest when it did not (POST /_sandbox/requests/verify). Exit status 0 when verified, 1 when not, 2 when the
sandbox could not be asked (not answering, a bad pattern, a wrong admin token).

    run.py verify --operation updatePurchaseHistory --status 200 --body '{"voucherCode": "GOLD-0001"}' --subset
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
from pathlib import Path

from sandbox.arguments import Parser, text_file, usage_error
from sandbox.config import from_env
from sandbox.kit.control_client import control_call

NOT_VERIFIED, UNUSABLE = 1, 2


def parse_args(argv) -> argparse.Namespace:
    parser = Parser(
        prog=f"{Path(sys.argv[0]).name} verify",
        description="Assert how many requests recorded by a running sandbox match a pattern (POST "
                    "/_sandbox/requests/verify); when too few did, print the closest ones with what differs, field "
                    "by field. Every criterion given must hold. Exit status 0 when verified, 1 when not, 2 when the "
                    "sandbox could not be asked.",
        epilog="example: run.py verify --operation updatePurchaseHistory --status 200 "
               "--body '{\"voucherCode\": \"GOLD-0001\"}' --subset --count 1",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    where = parser.add_argument_group("which sandbox")
    where.add_argument("--url", default=from_env("SANDBOX_URL"),
                       help="the sandbox's base URL (env SANDBOX_URL)")
    where.add_argument("--workspace", metavar="ID", help="verify a workspace's journal (X-Sandbox-Workspace)")
    where.add_argument("--admin-token", default=from_env("SANDBOX_ADMIN_TOKEN"),
                       help="the sandbox's admin token, if it has one (env SANDBOX_ADMIN_TOKEN)")
    match = parser.add_argument_group("what a request must be to match")
    match.add_argument("--vendor", help="returning-ai, fabric or capillary")
    match.add_argument("--operation", help="its operationId, e.g. updatePurchaseHistory")
    match.add_argument("--method", help="GET, PATCH, ...")
    match.add_argument("--path", help="the path exactly, without the query")
    match.add_argument("--path-matches", metavar="REGEX", help="a regular expression the whole path matches")
    match.add_argument("--status", type=int, help="the status the client received")
    match.add_argument("--query", action="append", default=[], metavar="NAME=VALUE",
                       help="a query parameter it carried, with this value (repeatable)")
    match.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="a header it carried, with this value (repeatable; credentials compared by fingerprint)")
    body = match.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="JSON", help="its JSON body: equal, or with --subset containing these fields")
    body.add_argument("--body-file", type=text_file, metavar="FILE", help="the same, from a file")
    match.add_argument("--subset", action="store_true",
                       help="the body need only contain the fields given (recursively), not equal it")
    match.add_argument("--body-path", action="append", default=[], metavar="JSONPATH",
                       help="something is at this JSON Path in the body, e.g. $.voucherCode (repeatable)")
    match.add_argument("--body-path-equals", action="append", default=[], nargs=2, metavar=("JSONPATH", "VALUE"),
                       help="some value at the path equals VALUE (read as JSON, else as text) (repeatable)")
    match.add_argument("--body-path-matches", action="append", default=[], nargs=2, metavar=("JSONPATH", "REGEX"),
                       help="some text at the path matches the regular expression whole (repeatable)")
    match.add_argument("--body-path-absent", action="append", default=[], metavar="JSONPATH",
                       help="nothing is at this JSON Path (repeatable)")
    match.add_argument("--since", metavar="TIME", help="only requests recorded at this ISO 8601 time or later")
    match.add_argument("--pattern", type=text_file, metavar="FILE",
                       help="a JSON pattern as POST /_sandbox/requests/verify takes it ('-': standard input); the "
                            "options above add to it")
    how_many = parser.add_mutually_exclusive_group()
    how_many.add_argument("--count", type=int, help="exactly this many must match")
    how_many.add_argument("--at-least", type=int, help="at least this many must match (the default: 1)")
    return parser.parse_args(argv)


def pattern_of(args) -> dict:
    pattern = {}
    if args.pattern:
        pattern = _json(args.pattern.text, "--pattern")
        if not isinstance(pattern, dict):
            usage_error("--pattern must hold a JSON object, as POST /_sandbox/requests/verify takes it", "verify")
    for option, field in (("vendor", "vendor"), ("operation", "operation"), ("method", "method"), ("path", "path"),
                          ("path_matches", "pathMatches"), ("status", "status"), ("since", "since"),
                          ("count", "count"), ("at_least", "atLeast")):
        if getattr(args, option) is not None:
            pattern[field] = getattr(args, option)
    for item in args.query:
        name, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--query takes NAME=VALUE, not {item!r}")
        pattern.setdefault("query", {})[name] = value
    for item in args.header:
        name, colon, value = item.partition(":")
        if not colon:
            raise SystemExit(f"--header takes 'NAME: VALUE', not {item!r}")
        pattern.setdefault("headers", {})[name.strip()] = value.strip()
    if args.body is not None or args.body_file is not None:
        text = args.body if args.body is not None else args.body_file.text
        pattern["body"] = _json(text, "--body")
    if args.subset:
        pattern["bodyMatch"] = "subset"
    paths = pattern.setdefault("bodyPaths", [])
    paths += [{"path": p} for p in args.body_path]
    paths += [{"path": p, "equals": _json_or_text(v)} for p, v in args.body_path_equals]
    paths += [{"path": p, "matches": r} for p, r in args.body_path_matches]
    paths += [{"path": p, "exists": False} for p in args.body_path_absent]
    if not paths:
        del pattern["bodyPaths"]
    return pattern


def ask(args, pattern: dict) -> tuple[int, dict]:
    status, text = control_call(args.url, "POST", "/_sandbox/requests/verify", pattern, args.admin_token,
                                args.workspace, timeout=30)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {}


def report(pattern: dict, result: dict) -> str:
    """The answer as a person reads it in a CI log."""
    expected = result.get("expected", {})
    wanted = f"exactly {expected['count']}" if "count" in expected else f"at least {expected.get('atLeast', 1)}"
    count = result["count"]
    requests = f"{count} request{'' if count == 1 else 's'}"
    lines = [f"{'Verified' if result['verified'] else 'NOT VERIFIED'}: {requests} matched (expected {wanted})",
             f"  pattern: {describe(pattern)}"]
    if result["verified"]:
        return "\n".join(lines)
    near = result.get("nearMisses")
    if near is not None and not near:
        lines.append("No request was recorded to compare with (GET /_sandbox/requests): did the client reach this "
                     "sandbox, and this workspace?")
    if near:
        lines.append("Closest requests:")
        for miss in near:
            lines.append(f"  {_request(miss['request'])}: {miss['met']} of {miss['of']} criteria met")
            width = max(len(d["field"]) for d in miss["differences"])
            for difference in miss["differences"]:
                lines.append(f"      {difference['field']:<{width}}  expected {_shown(difference['expected'])}, "
                             f"got {_shown(difference['actual'])}")
    if result.get("matches"):
        lines.append("Matching requests (the last of them):")
        lines += [f"  {_request(entry)}" for entry in result["matches"]]
    return "\n".join(lines)


def describe(pattern: dict) -> str:
    parts = [f"{k}={pattern[k]}" for k in ("vendor", "operation", "method", "path", "status", "since")
             if k in pattern]
    if "pathMatches" in pattern:
        parts.append(f"path~{pattern['pathMatches']}")
    parts += [f"query.{k}={v}" for k, v in pattern.get("query", {}).items()]
    parts += [f"header {k}: {v}" for k, v in pattern.get("headers", {}).items()]
    if "body" in pattern:
        relation = "contains" if pattern.get("bodyMatch") == "subset" else "="
        parts.append(f"body {relation} {json.dumps(pattern['body'])}")
    for item in pattern.get("bodyPaths", []):
        if "equals" in item:
            parts.append(f"{item['path']} = {json.dumps(item['equals'])}")
        elif "matches" in item:
            parts.append(f"{item['path']} ~ {item['matches']}")
        else:
            parts.append(f"{item['path']} {'present' if item.get('exists', True) else 'absent'}")
    return ", ".join(parts) or "any request"


def _request(entry: dict) -> str:
    status = "no answer (connection dropped)" if entry["status"] is None else entry["status"]
    return (f"#{entry['id']} {entry['time']} {entry['method']} {entry['path']} -> {status} "
            f"({entry['vendor']} {entry['operation'] or '-'})")


def _shown(value) -> str:
    return value if value == "<missing>" else json.dumps(value, ensure_ascii=False)


def _json(text: str, option: str):
    try:
        return json.loads(text)
    except ValueError as error:
        usage_error(f"{option} is not JSON: {error}", "verify")


def _json_or_text(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv) -> int:
    args = parse_args(argv)
    pattern = pattern_of(args)
    try:
        status, result = ask(args, pattern)
    except (urllib.error.URLError, OSError) as error:
        print(f"Nothing answers at {args.url} ({getattr(error, 'reason', error)}): is the sandbox running? "
              "(--url, env SANDBOX_URL)", file=sys.stderr)
        return UNUSABLE
    if status not in (200, 409) or "verified" not in result:
        message = result.get("error", {}).get("message") or f"HTTP {status}"
        print(f"The sandbox refused the verification ({status}): {message}", file=sys.stderr)
        return UNUSABLE
    print(report(pattern, result))
    return 0 if result["verified"] else NOT_VERIFIED
