"""pytest plugin: the `redemption_sandbox` fixture, a sandbox running in-process for the whole session.

Installed with the package (entry point `pytest11`); reset it between tests with `redemption_sandbox.reset()`.
"""
import pytest

from .testing import start_sandbox


@pytest.fixture(scope="session")
def redemption_sandbox():
    with start_sandbox() as sandbox:
        yield sandbox
