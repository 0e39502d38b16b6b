"""The declarative form of a check: a YAML file compiled to the same `CheckSpec` as a
Python check, whose function drives the same `Flow` API, so both behave identically.

A file holds one check, or several under `checks: [...]`. Every problem is reported with
the file and line of the offending node, and the other checks of the file still load.

- `schema`: the pydantic models of a check file;
- `compile`: a validated model → a `CheckSpec`;
- `reader`: the libyaml reader, its line index and the streaming of `checks:` lists;
- `errors`: validation errors → `file:line: message`.
"""

from synth.checks.yaml.compile import compile_check
from synth.checks.yaml.reader import load_yaml_checks, parse_yaml_checks
from synth.checks.yaml.schema import (
    Capture,
    CheckModel,
    Expect,
    HeaderCondition,
    JsonExpectation,
    Request,
    Step,
    StepFields,
)

__all__ = [
    "Capture",
    "CheckModel",
    "Expect",
    "HeaderCondition",
    "JsonExpectation",
    "Request",
    "Step",
    "StepFields",
    "compile_check",
    "load_yaml_checks",
    "parse_yaml_checks",
]
