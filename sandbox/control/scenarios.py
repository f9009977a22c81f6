"""Demo scenarios: a YAML file of data changes, fault rules and a short story, loaded in one call.

    title: A store outage during a voucher update
    story: What the trainer tells and what to try.
    seed: 2026            # optional: the world is reset with this seed (and size) first
    changes:              # optional: records to change or add
      - {collection: rai_vouchers, key: 507f..., set: {code: GOLD-2O26-0001}}
      - {collection: cap_redemptions, key: LATEB1, record: {...}}
    rateLimits:           # optional: the world's rate limits until its next reset, as a workspace takes them
      capillary: {requests: 5, windowSeconds: 60}
    faults:               # optional: rules, as POST /_sandbox/faults takes them
      - {vendor: returning-ai, operation: updatePurchaseHistory, fault: store-unavailable, probability: 0.5}
    steps:                # the story as numbered steps (specs/sandbox.yaml ScenarioStep); the demo page sends them
      - say: Re-issue the voucher with the right code.
        request: {vendor: returning-ai, method: PATCH, path: /purchase-histories/ORD..., body: {...}}
        expect: 200

Every file is checked when the sandbox starts (`check`): a step that is not a ScenarioStep, or whose request names
no documented operation, stops the start with one line naming the file and the step.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.core import rate_limits
from sandbox.core.spec import template_regex
from sandbox.core.validation import value_problems

from .errors import Conflict


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ScenarioRefused(ValueError):
    """A scenario file the sandbox will not start with: which file, which step, what to fix."""


def scenarios(directory: Path) -> dict[str, dict]:
    """Every scenario file, parsed; ScenarioRefused for one that is not YAML (`check` finds it at start-up)."""
    found = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            # libyaml's loader where PyYAML has it: every app made (each test's) checks every scenario file
            found[path.stem] = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        except yaml.YAMLError as error:
            raise ScenarioRefused(f"scenarios/{path.name} is not valid YAML: {error}") from None
    return found


def check(directory: Path, specs: dict) -> None:
    """Every scenario has a title, a story and steps, each step a ScenarioStep (specs/sandbox.yaml) whose request
    names a documented operation of its vendor; ScenarioRefused otherwise."""
    step_schema = specs["sandbox"].validator({"$ref": "#/components/schemas/ScenarioStep"})
    for name, scenario in scenarios(directory).items():
        where = f"scenarios/{name}.yaml"
        if not isinstance(scenario, dict) or not all(isinstance(scenario.get(k), str) for k in ("title", "story")):
            raise ScenarioRefused(f"{where} needs a title and a story (text)")
        steps = scenario.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ScenarioRefused(f"{where} needs steps: the story as numbered steps (specs/sandbox.yaml ScenarioStep)")
        for number, step in enumerate(steps, 1):
            problems = value_problems(step_schema, step)
            if problems:
                raise ScenarioRefused(f"{where}, step {number}: {problems[0].message}")
            request = step.get("request")
            if request and _operation(specs[request["vendor"]], request["method"], request["path"]) is None:
                raise ScenarioRefused(f"{where}, step {number}: {request['method']} {request['path']} is no operation "
                                      f"of {request['vendor']}'s spec")


def _operation(spec, method: str, path: str):
    bare = path.split("?", 1)[0]
    return next((op for op in spec.operations if op.method.upper() == method
                 and template_regex(op.path).match(bare)), None)


def load_scenario(world, scenario: dict) -> list:
    """Reset the world, apply the scenario's changes, set its fault rules; returns the rules. A change that would
    give the world another world's credential is refused (409) before anything changes."""
    for change in scenario.get("changes", []):
        claim = world.foreign_credential(change["collection"], change["key"], {**change.get("record", {}),
                                                                               **change.get("set", {})})
        if claim:
            raise Conflict(f"The scenario changes nothing: {claim}")
    world.reset(seed=scenario.get("seed"), size=scenario.get("size"))
    with world.store.transaction():
        if "rateLimits" in scenario:
            world.clock.set_limits(rate_limits.resolved(scenario["rateLimits"], [v.name for v in world.vendors]))
        for change in scenario.get("changes", []):
            collection, key = change["collection"], change["key"]
            record = change.get("record") or world.store.get(collection, key)
            if record is None:
                raise ValueError(f"scenario changes {collection}/{key}, which does not exist")
            record.update(change.get("set", {}))
            world.store.put(collection, key, record)
    return [world.faults.add_rule(rule) for rule in scenario.get("faults", [])]
