"""The contract-testing kit: tools for partners (and us) to test an API against its contract.

- `contract.py`: `run.py contract`, a vendor's spec run by Schemathesis against any server, with a Markdown report;
- `proxy.py`: `run.py proxy`, a validation proxy that forwards traffic to a real server and records per exchange
  whether request and response conform to the spec;
- `compat.py`: `run.py compat OLD NEW`, the breaking changes between two versions of a spec (a CI gate);
- `verify.py`: `run.py verify`, what a client sent to a running sandbox, asserted, with the closest requests printed
  when it was not as expected (POST /_sandbox/requests/verify, sandbox/control/verification.py);
- `speclint.py`: the house rules every spec of ours follows, beyond openapi-spec-validator;
- `postman.py`: a vendor's Postman collection generated from its spec (`GET /_sandbox/postman/<vendor>.json`).
"""
