"""Schemathesis fuzzes every spec against the app in-process, with all checks, stateless and stateful.

Auth and check options come from schemathesis.toml, shared with the command line.
"""
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase

from sandbox import Settings, create_app

SPECS = Path(__file__).parent.parent / "specs"
CONFIG = schemathesis.config.SchemathesisConfig.from_path(Path(__file__).parent.parent / "schemathesis.toml")

FABRIC_TENANT = "61a5f0c2b3d4e5f6a7b8c9d0"  # the demo token's own tenant; any other is a 403


@schemathesis.hook
def map_case(context, case):
    """Valid fabric requests carry the demo tenant, so they reach data; negative ones keep what was generated."""
    mode = getattr(getattr(case.meta, "generation", None), "mode", None)
    if case.headers and "x-fabric-tenant-id" in case.headers and getattr(mode, "value", mode) == "positive":
        case.headers["x-fabric-tenant-id"] = FABRIC_TENANT
    return case


app = create_app(Settings(seed=2026, size=40, publisher_timeout=0.01, strict_responses=True, backend="memory"))
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]  # a stateful failure shrinks for minutes otherwise
# derandomize: CI sees the same cases every run; a failure always reproduces.
FUZZ = hypothesis.settings(max_examples=60, deadline=None, phases=NO_SHRINK, derandomize=True,
                           suppress_health_check=list(HealthCheck))


def load(name: str):
    schema = schemathesis.openapi.from_path(SPECS / f"{name}.yaml", config=CONFIG)
    schema.app = app
    return schema


returning_ai = load("returning-ai")
fabric = load("fabric")
capillary = load("capillary")
control = load("sandbox").exclude(operation_id="resetSandbox")  # a reset mid-run would not break a contract


@pytest.fixture(autouse=True)
def fresh_world():
    app.extensions["sandbox"].reset(seed=2026, size=40)


@returning_ai.parametrize()
@FUZZ
def test_returning_ai_contract(case):
    case.call_and_validate()


@fabric.parametrize()
@FUZZ
def test_fabric_contract(case):
    case.call_and_validate()


@capillary.parametrize()
@FUZZ
def test_capillary_contract(case):
    case.call_and_validate()


@control.parametrize()
@FUZZ
def test_control_contract(case):
    case.call_and_validate()


class ReturningAIStateful(returning_ai.as_state_machine()):
    def setup(self):
        app.extensions["sandbox"].reset(seed=2026, size=40)


TestReturningAIStateful = ReturningAIStateful.TestCase
TestReturningAIStateful.settings = hypothesis.settings(max_examples=25, stateful_step_count=6, deadline=None,
                                                       phases=NO_SHRINK, derandomize=True,
                                                       suppress_health_check=list(HealthCheck))


class FabricStateful(fabric.as_state_machine()):
    def setup(self):
        app.extensions["sandbox"].reset(seed=2026, size=40)


TestFabricStateful = FabricStateful.TestCase
TestFabricStateful.settings = TestReturningAIStateful.settings


class CapillaryStateful(capillary.as_state_machine()):
    def setup(self):
        app.extensions["sandbox"].reset(seed=2026, size=40)


TestCapillaryStateful = CapillaryStateful.TestCase
TestCapillaryStateful.settings = TestReturningAIStateful.settings


class ControlStateful(control.as_state_machine()):
    def setup(self):
        sandbox = app.extensions["sandbox"]
        for workspace in sandbox.workspaces():
            sandbox.drop_workspace(workspace.id)
        sandbox.reset(seed=2026, size=40)


TestControlStateful = ControlStateful.TestCase
TestControlStateful.settings = TestReturningAIStateful.settings
