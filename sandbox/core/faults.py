"""Faults a client asks for on a request, so documented failures can be reproduced on demand.

The header's allowed values are declared in each vendor's spec (and validated like any parameter);
the vendor's model decides where in its flow each fault strikes, as its documentation describes.
"""
FAULT_HEADER = "X-Sandbox-Fault"


def requested_fault(params: dict) -> str | None:
    return params.get(FAULT_HEADER)
