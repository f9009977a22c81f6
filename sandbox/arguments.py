"""What the command line's parsers share (run.py and its subcommands): an error is one line, the last one, saying
where to look; a file an option names is read and parsed while the arguments are, so a missing or broken file is
that same one line, exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

USAGE = 2  # exit status of a command line that cannot be used as given (argparse's own)


class Parser(argparse.ArgumentParser):
    """argparse's parser without the usage block in front of an error (run.py's is 20 lines, which pushed the one
    line that matters off the screen)."""

    def error(self, message: str):
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def usage_error(message: str, command: str = ""):
    """Stop as a parser error does, for what only becomes clear after parsing (a fault rule's vendor operation)."""
    sys.stderr.write(f"{' '.join(filter(None, [Path(sys.argv[0]).name, command]))}: error: {message}\n")
    raise SystemExit(USAGE)


def is_openapi(document) -> bool:
    """Whether a parsed file looks like an OpenAPI (or Swagger) document, enough to be read as one."""
    return (isinstance(document, dict) and ("openapi" in document or "swagger" in document)
            and isinstance(document.get("paths", {}), dict))


class File(NamedTuple):
    path: Path
    text: str


class YAMLFile(NamedTuple):
    path: Path
    data: object


def text_file(name: str) -> File:
    """An option's file, read as UTF-8 text ('-': standard input)."""
    if name == "-":
        return File(Path(name), sys.stdin.read())
    path = Path(name)
    try:
        return File(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise argparse.ArgumentTypeError(f"{name} is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise argparse.ArgumentTypeError(f"{name} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{name} cannot be read ({error.strerror or error})") from None


def yaml_file(name: str) -> YAMLFile:
    """An option's YAML (or JSON) file, parsed; where it is not YAML, the line and column that stopped the parser."""
    file = text_file(name)
    try:
        return YAMLFile(file.path, yaml.safe_load(file.text))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise argparse.ArgumentTypeError(f"{name} is not valid YAML: {error.problem}{where}") from None
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{name} is not valid YAML: {error}") from None
