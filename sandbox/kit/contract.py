"""`run.py contract`: a vendor's contract, run by Schemathesis against any server, with reports people read.

Schemathesis does the generation (examples, coverage, fuzzing, stateful phases) and every check; this module picks
the spec, passes the options, fixes a seed so a failure replays, bounds the run, and turns the JUnit XML into a
Markdown report that lists each failure with the curl command that reproduces it.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import yaml

from ..config import ROOT, Settings

REPO_CONFIG = ROOT / "schemathesis.toml"


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"{Path(sys.argv[0]).name} contract",
        description="Run a vendor's contract (its spec in specs/) against a server: the sandbox, a staging server or "
                    "a partner's own mock. Exit status 0 when clean, 1 on any failure.",
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
    parser.add_argument("--report-dir", type=Path, default=Path("reports"), help="where the reports are written")
    return parser.parse_args(argv)


def spec_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml", ".json") else Settings().specs_dir / f"{name}.yaml"


def vendor_contract(path: Path) -> dict:
    """The spec as the vendor's contract. The vendor specs carry no sandbox-only parameter (the sandbox reads its
    fault and delay headers from x-sandbox-* extensions, which Schemathesis ignores); a spec given by path may be an
    older one whose X-Sandbox-* header parameters a partner's or a staging server does not have: they are dropped."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    """The repository's Schemathesis config minus its [auth.*] tables (the sandbox's demo credentials)."""
    kept, skipping = [], False
    for line in REPO_CONFIG.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            skipping = line.startswith("[auth.")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def command(args, config_file: Path, spec: Path, junit: Path) -> list[str]:
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", str(spec),
           "--url", args.base_url, "--checks", "all", "--seed", str(args.seed), "--max-time", str(args.max_time),
           "--max-examples", str(args.max_examples), "--phases", args.phases, "--no-shrink",
           "--report", "junit", "--report-junit-path", str(junit)]
    if args.auth:
        kind, _, secret = args.auth.partition(":")
        if kind == "bearer":
            cmd += ["-H", f"Authorization: Bearer {secret}"]
        elif kind == "basic":
            cmd += ["--auth", secret]
        else:
            raise SystemExit("--auth must be bearer:TOKEN or basic:USER:PASSWORD")
    for header in args.header:
        cmd += ["-H", header]
    return cmd


def markdown_report(junit: Path, spec: str, base_url: str) -> str:
    lines = [f"# Contract report: {spec} against {base_url}", ""]
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
    args.report_dir.mkdir(parents=True, exist_ok=True)
    name = spec_path(args.spec).stem
    junit = args.report_dir / f"contract-{name}.xml"
    junit.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        config = REPO_CONFIG
        if args.auth:
            config = Path(scratch) / "schemathesis.toml"
            config.write_text(_config_without_auth(), encoding="utf-8")
        spec = Path(scratch) / f"{name}.yaml"
        spec.write_text(yaml.safe_dump(vendor_contract(spec_path(args.spec)), sort_keys=False), encoding="utf-8")
        status = subprocess.run(command(args, config, spec, junit)).returncode
    report = args.report_dir / f"contract-{name}.md"
    report.write_text(markdown_report(junit, name, args.base_url), encoding="utf-8")
    print(f"JUnit XML: {junit}\nReport:    {report}")
    return 0 if status == 0 else 1
