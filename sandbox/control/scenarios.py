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
"""
from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.core import rate_limits

from .errors import Conflict


def scenarios(directory: Path) -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.yaml"))}


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
