"""The notices the playbook sends, built from run results and deploys: PagerDuty Events API
v2 triggers, resolves and change events (each channel words its own copy: slack.py,
webhook.py).
Every string goes through the redactor, and no event carries a routing key, webhook URL or
signing secret (they are looked up at send time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from synth.alerting.flaky import Flakiness
from synth.config import PlaybookSettings
from synth.model import AlertAction, CheckSpec, RunResult
from synth.outputs.artifact_links import api_link
from synth.outputs.page_links import deploy_page_url, run_page_url
from synth.redact import Redactor
from synth.store.records import DeployRecord, NewOutboxEvent, RunSummary

SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
EXCERPT_MAX = 2000
RECENT_RESULTS = 10
DEPLOY_PAGE_TEXT = "Deploy verification"


def dedup_key(environment: str, check: str) -> str:
    """The incident key of a check in an environment: the same in every location and
    replica, so they make one incident."""
    key = f"synth/{environment}/{check}"
    if len(key) <= DEDUP_KEY_MAX:
        return key
    return f"synth/{hashlib.sha256(key.encode()).hexdigest()}"


def change_key(environment: str, service: str) -> str:
    """The ordering key of a service's deploy change events."""
    return dedup_key(environment, f"deploy:{service}")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_of(result: RunResult, failing_locations: Sequence[str] = ()) -> str:
    """One line saying what broke: check, environment, step, failure type and cause."""
    where = f" at step '{result.failed_step}'" if result.failed_step else ""
    failure = result.failure
    kind = failure.type.value if failure else "failed"
    cause = " ".join(failure.message.split()) if failure else "the run failed"
    locations = f" [{', '.join(failing_locations)}]" if len(failing_locations) > 1 else ""
    deploy = f" after deploy {result.deploy.version}" if result.deploy else ""
    text = f"{result.check} failed in {result.environment}{where}{deploy}: {kind}: {cause}"
    return _clip(text + locations, SUMMARY_MAX)


_ARTIFACT_TEXT = {
    "screenshot.png": "Screenshot",
    "trace.zip": "Playwright trace",
    "console.log": "Console log",
}


def _links(
    playbook: PlaybookSettings, check: CheckSpec | None, trace_id: str
) -> list[dict[str, str]]:
    links = []
    runbook = (check.runbook_url if check else None) or playbook.runbook_url
    if runbook:
        links.append({"href": runbook, "text": "Runbook"})
    if trace_id and playbook.trace_url_template:
        links.append(
            {"href": playbook.trace_url_template.format(trace_id=trace_id), "text": "Trace"}
        )
    if playbook.dashboard_url:
        links.append({"href": playbook.dashboard_url, "text": "Dashboard"})
    return links


def _page_links(result: RunResult, public_url: str | None) -> list[dict[str, str]]:
    """The run's page and, for a deploy verification's run, the deploy's: none without
    `public_url`."""
    links = []
    if (run_page := run_page_url(public_url, result.run_id)) is not None:
        links.append({"href": run_page, "text": "Run"})
    if result.deploy is not None:
        deploy_page = deploy_page_url(public_url, result.deploy.deploy_id)
        if deploy_page is not None:
            links.append({"href": deploy_page, "text": DEPLOY_PAGE_TEXT})
    return links


def _recent(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    return [
        {
            "started_at": s.started_at.isoformat(),
            "status": s.status.value,
            "phase": s.phase.value,
            "location": s.location,
            "failure_type": s.failure_type.value if s.failure_type else None,
            "failed_step": s.failed_step,
            "deploy_id": s.deploy_id,
        }
        for s in summaries[:RECENT_RESULTS]
    ]


def trigger_event(
    result: RunResult,
    *,
    playbook_name: str,
    playbook: PlaybookSettings,
    check: CheckSpec | None,
    recent: Sequence[RunSummary] = (),
    failing_locations: Sequence[str] = (),
    redactor: Redactor,
    public_url: str | None = None,
) -> NewOutboxEvent:
    """The PagerDuty trigger for a failing check × environment. When `public_url` says
    where the agent is, its first link is the run's page, then the deploy's page (a
    verification's run) and the run's artifacts (browser screenshot, trace)."""
    failure = result.failure
    details: dict[str, Any] = {
        "check": result.check,
        "environment": result.environment,
        "service": result.service,
        "phase": result.phase.value,
        "location": result.location,
        "failing_locations": list(failing_locations) or [result.location],
        "failing_step": result.failed_step,
        "failure_type": failure.type.value if failure else None,
        "cause": failure.message if failure else None,
        "expected": failure.expected if failure else None,
        "actual": failure.actual if failure else None,
        "request": f"{failure.method} {failure.url}" if failure and failure.url else None,
        "response_excerpt": _clip(failure.response_excerpt, EXCERPT_MAX)
        if failure and failure.response_excerpt
        else None,
        "trace_id": result.trace_id or None,
        "run_id": result.run_id,
        "retried_in": result.attempt_location,
        "artifacts": [a.name for a in result.artifacts] or None,
        "attempts": result.attempts,
        "started_at": result.started_at.isoformat(),
        "playbook": playbook_name,
        "recent_results": _recent(recent),
    }
    if result.deploy is not None:
        details["deploy"] = {
            "id": result.deploy.deploy_id,
            "version": result.deploy.version,
            "commit": result.deploy.commit,
        }
        details["deploy_version"] = result.deploy.version
    if check is not None and check.description:
        details["description"] = check.description
    payload = {
        "summary": summary_of(result, failing_locations),
        "source": f"synth/{result.location}",
        "severity": playbook.severity_for(result.phase.value, result.environment),
        "timestamp": result.started_at.astimezone(UTC).isoformat(),
        "component": result.service,
        "group": result.environment,
        "class": failure.type.value if failure else "failed",
        "custom_details": {k: v for k, v in details.items() if v is not None},
    }
    event: dict[str, Any] = {"payload": payload, "client": "synth"}
    links = _page_links(result, public_url) + _links(playbook, check, result.trace_id)
    if public_url and result.artifacts:
        link = api_link(public_url)
        links += [
            {"href": link(result.run_id, a.name), "text": _ARTIFACT_TEXT.get(a.name, a.name)}
            for a in result.artifacts
        ]
    if links:
        event["links"] = links
    if playbook.dashboard_url:
        event["client_url"] = playbook.dashboard_url
    key = dedup_key(result.environment, result.check)
    return NewOutboxEvent(key, AlertAction.TRIGGER.value, playbook_name, redact(event, redactor))


def resolve_event(result: RunResult, *, playbook_name: str) -> NewOutboxEvent:
    """The PagerDuty resolve of a check × environment's incident."""
    return NewOutboxEvent(
        dedup_key(result.environment, result.check), AlertAction.RESOLVE.value, playbook_name, {}
    )


def change_event(
    deploy: DeployRecord,
    *,
    playbook_name: str,
    location: str,
    redactor: Redactor,
    public_url: str | None = None,
) -> NewOutboxEvent:
    """A PagerDuty change event announcing a deploy, shown beside the service's incidents;
    it links the deploy's own `url` and, under `public_url`, its verification's page."""
    summary = f"Deploy {deploy.version} of {deploy.service} to {deploy.environment}"
    details: dict[str, Any] = {
        "service": deploy.service,
        "environment": deploy.environment,
        "version": deploy.version,
        "deploy_id": deploy.id,
    }
    if deploy.commit:
        details["commit"] = deploy.commit
    if deploy.labels:
        details["labels"] = dict(deploy.labels)
    event: dict[str, Any] = {
        "payload": {
            "summary": _clip(summary, SUMMARY_MAX),
            "source": f"synth/{location}",
            "timestamp": deploy.created_at.astimezone(UTC).isoformat(),
            "custom_details": details,
        }
    }
    links = [{"href": deploy.url, "text": "Deploy"}] if deploy.url else []
    if (page := deploy_page_url(public_url, deploy.id)) is not None:
        links.append({"href": page, "text": DEPLOY_PAGE_TEXT})
    if links:
        event["links"] = links
    key = change_key(deploy.environment, deploy.service)
    return NewOutboxEvent(key, AlertAction.CHANGE.value, playbook_name, redact(event, redactor))


def flaky_key(environment: str, check: str) -> str:
    """The key of a check's flakiness notification: apart from its incident."""
    return dedup_key(environment, f"flaky:{check}")


def flaky_event(
    result: RunResult,
    flakiness: Flakiness,
    *,
    playbook_name: str,
    playbook: PlaybookSettings,
    check: CheckSpec | None,
    redactor: Redactor,
) -> NewOutboxEvent:
    """A low-urgency (`info`) PagerDuty trigger naming a flaky check, where the transient
    failures happen and of what type; resolved when the check is no longer flaky."""
    details = {
        "check": result.check,
        "environment": result.environment,
        "service": result.service,
        "location": result.location,
        "flaky_ratio": round(flakiness.ratio, 4),
        "runs_24h": flakiness.runs,
        "transient_failures_24h": flakiness.transient,
        "step": flakiness.step,
        "failure_type": flakiness.failure_type.value if flakiness.failure_type else None,
        "playbook": playbook_name,
    }
    payload = {
        "summary": _clip(f"{flakiness.describe(result.check)} in {result.environment}", 1024),
        "source": f"synth/{result.location}",
        "severity": "info",
        "timestamp": datetime.now(UTC).isoformat(),
        "component": result.service,
        "group": result.environment,
        "class": "flaky",
        "custom_details": {k: v for k, v in details.items() if v is not None},
    }
    event: dict[str, Any] = {"payload": payload, "client": "synth"}
    links = _links(playbook, check, "")
    if links:
        event["links"] = links
    key = flaky_key(result.environment, result.check)
    return NewOutboxEvent(key, AlertAction.TRIGGER.value, playbook_name, redact(event, redactor))


def routing_test_events(playbook_name: str, *, location: str, nonce: str) -> list[NewOutboxEvent]:
    """`synth page test`: a harmless info trigger and its resolve."""
    key = f"synth/test/{playbook_name}/{nonce}"
    now = datetime.now(UTC).isoformat()
    trigger = {
        "payload": {
            "summary": f"synth test page for playbook {playbook_name} from {location}: "
            "routing works; this resolves itself",
            "source": f"synth/{location}",
            "severity": "info",
            "timestamp": now,
            "component": "synth",
            "group": "test",
            "class": "test",
            "custom_details": {"playbook": playbook_name, "location": location},
        },
        "client": "synth",
    }
    return [
        NewOutboxEvent(key, AlertAction.TRIGGER.value, playbook_name, trigger),
        NewOutboxEvent(key, AlertAction.RESOLVE.value, playbook_name, {}),
    ]


def redact(value: Any, redactor: Redactor) -> Any:
    """`value` with every string (keys too) passed through the redactor."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, Mapping):
        return {redactor.text(str(k)): redact(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, redactor) for v in value]
    return value
