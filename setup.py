"""The build step that makes the sandbox's data package data (everything else is in pyproject.toml).

The specs, fixtures, scenarios and the Schemathesis configuration stay at the top of the repository, where the
project, Schemathesis (which looks for schemathesis.toml in the folder it runs in) and the tests expect them. A
build copies them into the package as sandbox/data/, so an installed sandbox (a venv, `pip install --user`, a
system install, a wheel) reads them through importlib.resources (sandbox/config.py) wherever it was installed. A
copy at build time rather than a package-dir mapping, because schemathesis.toml lies at the top level itself, and
rather than symlinks, which not every system or archive keeps. The sdist carries the sources (MANIFEST.in).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# What the sandbox reads at run time, relative to the repository's top level (and to sandbox/data/ once built).
DATA = ["specs/*.yaml", "fixtures/*.yaml", "fixtures/faults/*.yaml", "scenarios/*.yaml", "schemathesis.toml"]


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "sandbox" / "data"
        for pattern in DATA:
            sources = sorted(HERE.glob(pattern))
            if not sources:
                raise SystemExit(f"nothing matches {pattern}: the sandbox's data is missing from {HERE}")
            for source in sources:
                copy = target / source.relative_to(HERE)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)


setup(cmdclass={"build_py": BuildPyWithData})
