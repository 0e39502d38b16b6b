"""The reports `synth run` prints and writes, one module per format:

- `report_terminal`: `TerminalReporter`, a block per check as it completes and a summary;
- `report_json`: `json_report`, the versioned JSON report, its runs in the one JSON form
  of a run (`run_to_dict` / `run_from_dict` from synth.codec, also used by the store,
  the API and the verdict);
- `report_junit`: `junit_report`, JUnit XML for CI test views.

Every report renders only the fields of a `RunResult`, which the runner has already
redacted; none sees a request's headers or body beyond the failing request's
`Failure.request_headers`/`response_headers` (through `Redactor.headers`) and
`Failure.response_excerpt`.
"""

from synth.codec import run_from_dict, run_to_dict
from synth.outputs.report_json import (
    JSON_SCHEMA,
    SCHEMA_VERSION,
    json_report,
    write_json_report,
)
from synth.outputs.report_junit import junit_report, write_junit_report
from synth.outputs.report_terminal import (
    NORMAL,
    QUIET,
    VERBOSE,
    TerminalReporter,
    render_run,
    summary_line,
)
from synth.outputs.report_text import format_duration

__all__ = [
    "JSON_SCHEMA",
    "NORMAL",
    "QUIET",
    "SCHEMA_VERSION",
    "VERBOSE",
    "TerminalReporter",
    "format_duration",
    "json_report",
    "junit_report",
    "render_run",
    "run_from_dict",
    "run_to_dict",
    "summary_line",
    "write_json_report",
    "write_junit_report",
]
