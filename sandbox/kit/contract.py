"""`run.py contract`: a vendor's contract, run by Schemathesis against any server, with reports people read.

Schemathesis does the generation (examples, coverage, fuzzing, stateful phases) and every check; this module picks
the spec and its operations, checks that the server answers at all before generating anything, passes the options,
fixes a seed so a failure replays, bounds the run, and turns the JUnit XML into a Markdown report that lists each
failure with the curl command that reproduces it. The credential in use never reaches the console, the JUnit XML or
the report: each curl reads it from $CONTRACT_AUTHORIZATION instead, so the commands run as printed once it is set.
"""
from __future__ import annotations

import argparse
import base64
import importlib.util
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import yaml

from ..arguments import Parser, is_openapi, usage_error, yaml_file
from ..config import ROOT, Settings
from ..core.spec import HTTP_METHODS

REPO_CONFIG = ROOT / "schemathesis.toml"
AUTH_VARIABLE = "CONTRACT_AUTHORIZATION"  # the environment variable the reproduction commands read the credential from
UNREACHABLE = 2  # exit status when the server does not answer at all (1: the contract failed)


def parse_args(argv) -> argparse.Namespace:
    parser = Parser(
        prog=f"{Path(sys.argv[0]).name} contract",
        description="Run a vendor's contract (its spec in specs/) against a server: the sandbox, a staging server or "
                    "a partner's own mock. Exit status 0 when clean, 1 on any failure, 2 when nothing answers at "
                    "--base-url (checked before any case is generated).",
        epilog="The reports' curl commands send the credential as \"Authorization: $CONTRACT_AUTHORIZATION\": set "
               "it (the report says to what) and they run as printed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--spec", required=True, help="a spec name (returning-ai, fabric, capillary, sandbox) or a path")
    parser.add_argument("--base-url", required=True,
                        help="the API's base URL, e.g. http://127.0.0.1:8080/returning-ai/v1")
    parser.add_argument("--auth", metavar="bearer:TOKEN|basic:USER:PASSWORD",
                        help="credentials for the server; without it, the sandbox's demo credentials are used")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="NAME:VALUE",
                        help="an extra header on every request (repeatable)")
    parser.add_argument("--seed", type=int, default=42, help="generation seed: the same seed replays the same run")
    parser.add_argument("--max-time", type=int, default=120, help="time budget of the run, in seconds")
    parser.add_argument("--max-examples", type=int, default=50, help="cases per operation in the fuzzing phase")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful", help="Schemathesis phases to run")
    parser.add_argument("--operation", action="append", default=[], metavar="OPERATION_ID",
                        help="test only this operation (its operationId in the spec, e.g. updatePurchaseHistory); "
                             "repeatable. Default: every operation")
    parser.add_argument("--exclude", action="append", default=[], metavar="OPERATION_ID",
                        help="leave this operation out (its operationId); repeatable")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"), help="where the reports are written")
    return parser.parse_args(argv)


def spec_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml", ".json") else Settings().specs_dir / f"{name}.yaml"


def vendor_contract(document: dict) -> dict:
    """The spec as the vendor's contract. The vendor specs carry no sandbox-only parameter (the sandbox reads its
    fault and delay headers from x-sandbox-* extensions, which Schemathesis ignores); a spec given by path may be an
    older one whose X-Sandbox-* header parameters a partner's or a staging server does not have: they are dropped."""
    components = document.get("components", {}).get("parameters", {})

    def sandbox_only(param: dict) -> bool:
        if "$ref" in param:
            param = components.get(param["$ref"].rsplit("/", 1)[-1], {})
        return param.get("name", "").lower().startswith("x-sandbox-")

    for item in document.get("paths", {}).values():
        for node in [item, *(op for op in item.values() if isinstance(op, dict))]:
            if isinstance(node.get("parameters"), list):
                node["parameters"] = [p for p in node["parameters"] if not sandbox_only(p)]
    for name in [n for n, p in components.items() if sandbox_only(p)]:
        del components[name]
    return document


def _config_without_auth() -> str:
    """The repository's Schemathesis config minus its auth tables (the sandbox's demo credentials)."""
    kept, skipping = [], False
    for line in REPO_CONFIG.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            skipping = line.startswith(("[auth.", "[project.auth."))
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def authorization(auth: str | None, document: dict) -> str | None:
    """The Authorization header the run sends: from --auth, else the demo credential schemathesis.toml gives the
    spec (by its title); None when neither applies."""
    if auth:
        kind, _, secret = auth.partition(":")
        if kind == "bearer" and secret:
            return f"Bearer {secret}"
        if kind == "basic" and ":" in secret:
            return "Basic " + base64.b64encode(secret.encode()).decode()
        raise SystemExit("--auth must be bearer:TOKEN or basic:USER:PASSWORD")
    title = document.get("info", {}).get("title")
    config = tomllib.loads(REPO_CONFIG.read_text(encoding="utf-8"))
    for project in config.get("project", []):
        if project.get("title") != title:
            continue
        for scheme in project.get("auth", {}).get("openapi", {}).values():
            if "bearer" in scheme:
                return f"Bearer {scheme['bearer']}"
            if "username" in scheme:
                return "Basic " + base64.b64encode(f"{scheme['username']}:{scheme['password']}".encode()).decode()
    return None


def operation_ids(document: dict) -> list[str]:
    return [op["operationId"] for item in document.get("paths", {}).values() for method, op in item.items()
            if method in HTTP_METHODS and isinstance(op, dict) and "operationId" in op]


def check_selection(args, document: dict) -> None:
    known = operation_ids(document)
    unknown = [name for name in [*args.operation, *args.exclude] if name not in known]
    if unknown:
        raise SystemExit(f"No operation {', '.join(unknown)} in the spec; its operations: {', '.join(known)}")
    if args.operation and not set(args.operation) - set(args.exclude):
        raise SystemExit("--exclude leaves none of the --operation operations to test")


def unreachable(base_url: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at the base URL, or None when a server answers (with any HTTP status)."""
    try:
        urllib.request.urlopen(urllib.request.Request(base_url, method="GET"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # a 404 or a 401 is a server answering
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)
    return None


def command(args, config_file: Path, spec: Path, junit: Path, auth_header: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", str(spec),
           "--url", args.base_url, "--checks", "all", "--seed", str(args.seed), "--max-time", str(args.max_time),
           "--max-examples", str(args.max_examples), "--phases", args.phases, "--no-shrink",
           # Unsanitized, so that a curl shows which credential it sent; the credential in use is then replaced by
           # $CONTRACT_AUTHORIZATION in everything written (Redactor), and any other value stays as sent.
           "--output-sanitize", "false",
           "--report", "junit", "--report-junit-path", str(junit)]
    if args.auth:
        cmd += ["-H", f"Authorization: {auth_header}"]
    for header in args.header:
        cmd += ["-H", header]
    for name in args.operation:
        cmd += ["--include-operation-id", name]
    for name in args.exclude:
        cmd += ["--exclude-operation-id", name]
    return cmd


class Redactor:
    """Replaces the credential in use by the variable the reproduction commands read it from: a curl's
    -H 'Authorization: <it>' becomes -H "Authorization: $CONTRACT_AUTHORIZATION" (double quotes, so the shell
    expands it), and any other occurrence of it (or of the token alone) a mention of the variable."""

    def __init__(self, header: str | None):
        self.header = header
        self.token = header.split(" ", 1)[1] if header and " " in header else header

    def __call__(self, text: str) -> str:
        if not self.header:
            return text
        text = text.replace(f"'Authorization: {self.header}'", f'"Authorization: ${AUTH_VARIABLE}"')
        text = text.replace(self.header, f"${AUTH_VARIABLE}")
        return text.replace(self.token, f"${AUTH_VARIABLE}") if len(self.token) >= 6 else text


def run_redacted(cmd: list[str], redact: Redactor) -> int:
    """Schemathesis, its console output relayed line by line with the credential replaced."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          encoding="utf-8", errors="replace") as process:
        for line in process.stdout:
            sys.stdout.write(redact(line))
            sys.stdout.flush()
    return process.returncode


def markdown_report(junit: Path, spec: str, base_url: str, credential: str = "") -> str:
    lines = [f"# Contract report: {spec} against {base_url}", ""]
    if credential:
        lines += [f"The curl commands below read the credential from ${AUTH_VARIABLE}: {credential}", ""]
    if not junit.exists():
        return "\n".join(lines + ["No JUnit report was written: the run did not start (see the console output)."])
    root = ElementTree.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    lines += [f"{len(cases)} operations tested, {len(failed)} with failures.", ""]
    for case in failed:
        lines += [f"## {case.get('name')}", ""]
        for problem in [*case.findall("failure"), *case.findall("error")]:
            text = (problem.text or problem.get("message") or "").strip()
            lines += ["```", text, "```", ""]
    return "\n".join(lines)


def main(argv) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("schemathesis") is None:
        usage_error("needs Schemathesis, which the sandbox installs only when asked for: pip install "
                    "'redemption-sandbox[contract]'", "contract")
    path = spec_path(args.spec)
    if not path.is_file():
        usage_error(f"no spec {args.spec} ({path}): name one of returning-ai, fabric, capillary, sandbox, or give "
                    "a path", "contract")
    try:
        document = yaml_file(str(path)).data
    except argparse.ArgumentTypeError as unreadable:
        usage_error(f"--spec {unreadable}", "contract")
    if not is_openapi(document):
        usage_error(f"--spec {path} is not an OpenAPI document (no openapi field, or paths that are not a mapping)",
                    "contract")
    document = vendor_contract(document)
    check_selection(args, document)
    header = authorization(args.auth, document)
    try:
        args.report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        usage_error(f"--report-dir {args.report_dir} cannot be made ({error.strerror or error})", "contract")
    why = unreachable(args.base_url)
    if why:
        print(f"Nothing answers at {args.base_url} ({why}): start the server, or check --base-url. No case was run.",
              file=sys.stderr)
        return UNREACHABLE
    name = path.stem
    junit = args.report_dir / f"contract-{name}.xml"
    junit.unlink(missing_ok=True)
    redact = Redactor(header)
    with tempfile.TemporaryDirectory() as scratch:
        config = REPO_CONFIG
        if args.auth:
            config = Path(scratch) / "schemathesis.toml"
            config.write_text(_config_without_auth(), encoding="utf-8")
        spec = Path(scratch) / f"{name}.yaml"
        spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        status = run_redacted(command(args, config, spec, junit, header), redact)
    if junit.exists():
        junit.write_text(redact(junit.read_text(encoding="utf-8")), encoding="utf-8")
    credential = ""
    if args.auth and args.auth.startswith("bearer:"):
        credential = f"`export {AUTH_VARIABLE}='Bearer <the TOKEN given to --auth>'`"
    elif args.auth:
        credential = f"`export {AUTH_VARIABLE}=\"Basic $(printf %s 'USER:PASSWORD' | base64)\"` (those of --auth)"
    elif header:
        credential = f"`export {AUTH_VARIABLE}='{header}'` (the sandbox's demo credential)"
    report = args.report_dir / f"contract-{name}.md"
    report.write_text(markdown_report(junit, name, args.base_url, credential), encoding="utf-8")
    print(f"JUnit XML: {junit}\nReport:    {report}")
    return 0 if status == 0 else 1
