"""The JUnit XML report (`synth run --junit`), for the test views of Jenkins, GitLab and
GitHub Actions.

One `<testsuite name="synth.<env>">` holds a `<testcase>` per run. A failed run carries a
`<failure>` (or an `<error>` for a broken check script) whose text is the same detail block
the terminal prints; `<system-out>` lists the steps, their timings and requests.
"""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from synth import __version__
from synth.model import FailureType, RunResult, Status
from synth.outputs.artifact_links import ArtifactLink, artifact_lines
from synth.outputs.page_links import RunPage
from synth.outputs.report_terminal import ASCII_MARKS, request_line
from synth.outputs.report_text import (
    LABEL_WIDTH,
    detail_value,
    failure_lines,
    format_duration,
    split_lines,
    write_report_text,
)

_MESSAGE_CHARS = 500
# Everything outside XML 1.0's Char production (C0 controls but tab/LF/CR, lone
# surrogates, U+FFFE, U+FFFF) makes the document unparseable, so it is dropped.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (escaping is the serialiser's job)."""
    return _NOT_XML_CHAR.sub("", text)


def junit_report(
    results: Sequence[RunResult],
    *,
    env: str,
    duration_s: float | None = None,
    hostname: str | None = None,
    artifact_link: ArtifactLink | None = None,
    run_page: RunPage | None = None,
) -> str:
    """The report as an XML document. `duration_s` is the suite's wall time (default: from
    the first run's start to the last run's end); `hostname` defaults to this machine's.
    `run_page` names the agent's page of a run it stored (`page:` in the case's text)."""
    failures = sum(1 for r in results if _is_failure(r))
    errors = sum(1 for r in results if _is_error(r))
    skipped = sum(1 for r in results if r.status is Status.SKIPPED)
    elapsed = _wall_time(results) if duration_s is None else duration_s
    counts = {
        "tests": str(len(results)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": _seconds(elapsed),
    }
    root = ET.Element("testsuites", {"name": "synth", **counts})
    suite = _sub(
        root,
        "testsuite",
        name=f"synth.{env}",
        **counts,
        timestamp=_timestamp(results),
        hostname=hostname if hostname is not None else socket.gethostname(),
    )
    properties = _sub(suite, "properties")
    _sub(properties, "property", name="environment", value=env)
    _sub(properties, "property", name="synth_version", value=__version__)
    for result in results:
        _testcase(suite, result, artifact_link, run_page(result.run_id) if run_page else None)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_junit_report(
    path: str | os.PathLike[str],
    results: Sequence[RunResult],
    *,
    env: str,
    duration_s: float | None = None,
    hostname: str | None = None,
    artifact_link: ArtifactLink | None = None,
    run_page: RunPage | None = None,
) -> None:
    """Write `junit_report(...)` to a file (or standard output for "-")."""
    report = junit_report(
        results,
        env=env,
        duration_s=duration_s,
        hostname=hostname,
        artifact_link=artifact_link,
        run_page=run_page,
    )
    write_report_text(path, report)


def _testcase(
    suite: ET.Element, result: RunResult, artifact_link: ArtifactLink | None, page: str | None
) -> None:
    case = _sub(
        suite,
        "testcase",
        classname=f"synth.{result.environment}.{result.check}",
        name=result.check,
        time=_seconds(result.duration_s),
    )
    failure = result.failure
    if result.status is Status.FAILED:
        tag = "error" if _is_error(result) else "failure"
        kind = str(failure.type) if failure else "failed"
        message = failure.message.strip() if failure else "the check failed"
        first_line = split_lines(message)[0][:_MESSAGE_CHARS]
        element = _sub(case, tag, message=f"{kind}: {first_line}", type=kind)
        where = [f"{'page:':<{LABEL_WIDTH}}{page}"] if page else []
        where += [
            f"{'artifact:':<{LABEL_WIDTH}}{line}" for line in artifact_lines(result, artifact_link)
        ]
        element.text = xml_text("\n".join([*_failure_text(result), *where]) + "\n")
    elif result.status is Status.SKIPPED:
        _sub(case, "skipped", message=failure.message if failure else "skipped")
    out = _sub(case, "system-out")
    # The attachment lines Jenkins' JUnit Attachments plugin (and GitLab) pick up.
    attached = [
        f"[[ATTACHMENT|{artifact_link(result.run_id, a.name)}]]"
        for a in result.artifacts
        if artifact_link is not None
    ]
    out.text = xml_text("\n".join([*_run_lines(result, page), *attached]) + "\n")


def _failure_text(result: RunResult) -> list[str]:
    lines = []
    if result.failed_step:
        lines.append(f"{'step:':<{LABEL_WIDTH}}{result.failed_step}")
    if result.failure is not None:
        lines.extend(failure_lines(result.failure, trace_id=result.trace_id, traceback_frames=None))
    if result.attempts > 1:
        lines.append(f"{'attempts:':<{LABEL_WIDTH}}{result.attempts}")
    return lines


def _run_lines(result: RunResult, page: str | None) -> list[str]:
    def field(label: str, value: object) -> str:
        return f"{label + ':':<{LABEL_WIDTH}}{value}"

    lines = [
        field("check", f"{result.check} (service {result.service})"),
        field("env", result.environment),
        field("phase", result.phase),
        field("location", result.location),
        field("run", result.run_id),
    ]
    if page:
        lines.append(field("page", page))
    if result.trace_id:
        lines.append(field("trace", result.trace_id))
    if result.attempts > 1:
        lines.append(field("attempts", result.attempts))
    if result.tags:
        lines.append(field("tags", ", ".join(result.tags)))
    if result.deploy is not None:
        deploy = result.deploy
        commit = f" ({deploy.commit})" if deploy.commit else ""
        lines.append(
            field("deploy", f"{deploy.deploy_id}: {deploy.service} {deploy.version}{commit}")
        )
    lines.append("steps:")
    width = max((len(s.name) for s in result.steps), default=0)
    for step in result.steps:
        line = f"  {ASCII_MARKS.of(step.status)} {step.name:<{width}}  "
        line += f"{format_duration(step.duration_s):>6}"
        if step.failure is not None:
            line += f"   {step.failure.type}"
        lines.append(line)
        lines.extend(f"      {key}: {detail_value(value)}" for key, value in step.details.items())
        lines.extend("      " + request_line(r) for r in step.requests)
    return lines


def _is_error(result: RunResult) -> bool:
    """The check's own code failed (an error of the test, in JUnit's words); a script error
    the target's page threw is the target failing, as the deploy verdict counts it."""
    failure = result.failure
    return (
        result.status is Status.FAILED
        and result.failure_type is FailureType.SCRIPT_ERROR
        and not (failure is not None and failure.in_target)
    )


def _is_failure(result: RunResult) -> bool:
    return result.status is Status.FAILED and not _is_error(result)


def _sub(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attributes.items()})


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _wall_time(results: Sequence[RunResult]) -> float:
    if not results:
        return 0.0
    start = min(_utc(r.started_at) for r in results)
    end = max(_utc(r.started_at) + timedelta(seconds=r.duration_s) for r in results)
    return (end - start).total_seconds()


def _timestamp(results: Sequence[RunResult]) -> str:
    """The suite's start in UTC, in the zone-less form the JUnit XSD (and Jenkins) expect."""
    start = min((_utc(r.started_at) for r in results), default=datetime.now(UTC))
    return start.strftime("%Y-%m-%dT%H:%M:%S")
