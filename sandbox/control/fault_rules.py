"""A fault rule as POST /_sandbox/faults takes it, checked the same way wherever it comes from: the API, or a file of
rules given to run.py --faults (checked before the sandbox serves, so a typo is one line, not a rule that never
fires)."""
from __future__ import annotations

from sandbox.core.faults import accepted_faults, not_appliable
from sandbox.core.validation import body_problems


def unaccepted(spec, rule: dict) -> str | None:
    """Why the vendor (its spec) has no operation the rule names, or one that does not accept its fault (the API's
    404); None when every operation it names accepts it."""
    operation, fault = rule["operation"], rule["fault"]
    operations = [op for op in spec.operations if operation in ("*", op.operation_id)]
    if not operations:
        return (f"{rule['vendor']} has no operation {operation}; its operations: "
                f"{', '.join(op.operation_id for op in spec.operations)}")
    refusing = [op.operation_id for op in operations if fault not in accepted_faults(op)]
    if refusing:
        return (f"{', '.join(refusing)} does not accept the fault {fault}; GET /_sandbox/faults/catalogue lists what "
                "each operation accepts")
    return None


def refusal(specs: dict, rule) -> str | None:
    """Why POST /_sandbox/faults would refuse this rule (its spec's schema, then unaccepted, then `applied` on a
    fault that cannot come after a write), in the API's words; None when it would set it."""
    create = next(op for op in specs["sandbox"].operations if op.operation_id == "createFaultRule")
    problems = body_problems(create, rule)
    if problems:
        return "; ".join(problem.message for problem in problems)
    rule = {**create.body_defaults, **rule}
    return (not_appliable(rule["fault"]) if rule.get("applied") else None) or unaccepted(specs[rule["vendor"]], rule)
