"""Issue 32 point 4: a command line that cannot be used is one line, the last one, saying what to do; exit status 2;
never a traceback. run.py --faults is checked as POST /_sandbox/faults checks a rule (control/fault_rules.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import cli as run
from services import free_port

ROOT = Path(__file__).parent.parent
SPEC = str(ROOT / "specs" / "fabric.yaml")


@pytest.fixture(autouse=True)
def named_run_py(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run.py"])
    monkeypatch.setattr(run, "serve", lambda app, args: pytest.fail("a refused command line must not serve"))


def refusal(argv, capsys) -> str:
    """run.py's one line on standard error for `argv`, after checking it exits 2 and prints nothing else."""
    with pytest.raises(SystemExit) as stopped:
        run.main(argv)
    captured = capsys.readouterr()
    assert stopped.value.code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n"), captured.err
    return captured.err.strip()


def written(tmp_path, text: str) -> str:
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("rules, says", [
    ("- {vendor: fabric, fault: nonsense}", "rule 1: fault must be a fault name from GET /_sandbox/faults/catalogue"),
    ("- {vendor: fabric, fault: latency}\n- {vendor: acme, fault: latency}",
     "rule 2: vendor must be returning-ai, fabric or capillary"),
    ("- {vendor: fabric, operation: updateRedemption, fault: publisher-timeout}",
     "rule 1: updateRedemption does not accept the fault publisher-timeout"),
    ("- {vendor: fabric, operation: noSuchThing, fault: latency}", "rule 1: fabric has no operation noSuchThing"),
    ("- {vendor: fabric, fault: latency, applied: true}", "rule 1: applied is for the faults that can come after a write"),
    ("- {vendor: fabric, fault: latency, colour: red}", "rule 1: Unknown field(s) colour"),
    ("- fabric", "rule 1: The body must be of type object, not string"),
    ("rules:\n  - {vendor: fabric, fault: latency}", "must hold a YAML list of fault rules"),
])
def test_a_faults_file_rule_the_api_would_refuse_stops_the_start_naming_the_rule(rules, says, tmp_path, capsys):
    path = written(tmp_path, rules)
    line = refusal(["--port", str(free_port()), "--faults", path], capsys)
    assert line.startswith(f"run.py: error: --faults {path}") and says in line, line


@pytest.mark.parametrize("argv, says", [
    (["--faults", "{missing}"], "run.py: error: argument --faults: {missing}: no such file (see run.py --help)"),
    (["--faults", "{directory}"], "argument --faults: {directory} is a directory, not a file"),
    (["--faults", "{broken}"], "argument --faults: {broken} is not valid YAML: expected the node content, but found "
                               "'<stream end>' at line 2, column 1"),
    (["compat", "{missing}", SPEC], "run.py compat: error: argument OLD: {missing}: no such file (see run.py compat "
                                    "--help)"),
    (["compat", SPEC, "{broken}"], "run.py compat: error: argument NEW: {broken} is not valid YAML"),
    (["compat", SPEC, "{list}"], "run.py compat: error: {list} is not an OpenAPI document"),
    (["verify", "--pattern", "{missing}"], "run.py verify: error: argument --pattern: {missing}: no such file"),
    (["verify", "--pattern", "{list}"], "run.py verify: error: --pattern is not JSON"),
    (["verify", "--body-file", "{directory}"], "argument --body-file: {directory} is a directory, not a file"),
    (["contract", "--spec", "{missing}", "--base-url", "http://127.0.0.1:1"], "run.py contract: error: no spec "
                                                                              "{missing}"),
    (["contract", "--spec", "{broken}", "--base-url", "http://127.0.0.1:1"], "run.py contract: error: --spec "
                                                                             "{broken} is not valid YAML"),
    (["contract", "--spec", "fabric", "--base-url", "http://127.0.0.1:1", "--report-dir", "{list}"],
     "run.py contract: error: --report-dir {list} cannot be made"),
])
def test_a_missing_or_broken_file_is_one_line_for_every_command(argv, says, tmp_path, capsys):
    files = {"missing": str(tmp_path / "missing.yaml"), "directory": str(tmp_path), "list": written(tmp_path, "- 1\n"),
             "broken": str(tmp_path / "broken.yaml")}
    (tmp_path / "broken.yaml").write_text("[1,\n", encoding="utf-8")
    line = refusal([arg.format(**files) for arg in argv], capsys)
    assert says.format(**files) in line, line


def test_argparse_errors_are_one_line_and_an_unknown_command_lists_the_commands(capsys):
    assert refusal(["--size", "abc"], capsys) == ("run.py: error: argument --size: must be a whole number, not 'abc' "
                                                  "(see run.py --help)")
    assert refusal(["contrct"], capsys) == ("run.py: error: no command 'contrct' (did you mean contract?); the "
                                            "commands: contract, proxy, compat, verify, or none to serve (see run.py "
                                            "--help)")
    assert refusal(["serve"], capsys).startswith("run.py: error: no command 'serve'; the commands: contract, proxy")
    assert refusal(["verify", "--bogus"], capsys) == ("run.py verify: error: unrecognized arguments: --bogus (see "
                                                      "run.py verify --help)")


def test_run_py_itself_prints_no_traceback(tmp_path):
    """The same through the real entry point, as a user's shell sees it."""
    out = subprocess.run([sys.executable, "run.py", "compat", str(tmp_path / "old.yaml"), SPEC], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"run.py compat: error: argument OLD: {tmp_path / 'old.yaml'}: no such file (see run.py " \
                         "compat --help)\n"
