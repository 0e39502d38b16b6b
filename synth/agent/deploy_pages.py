"""A deploy as every deploy answer shows it: the record's API shape with the links a person
opens (`page_url` for the deploy and for each failing run, under `server.public_url`)."""

from __future__ import annotations

from typing import Any

from synth.outputs.page_links import deploy_page_url, run_page_url
from synth.store.records import DeployRecord, deploy_to_dict


def failing_with_pages(failing: Any, public_url: str | None) -> Any:
    """A verdict's `failing` list with each run's `page_url` (others are left as they are)."""
    if not isinstance(failing, list):
        return failing
    return [
        item | {"page_url": run_page_url(public_url, str(item["run_id"]))}
        if isinstance(item, dict) and item.get("run_id")
        else item
        for item in failing
    ]


def deploy_with_pages(record: DeployRecord, public_url: str | None) -> dict[str, Any]:
    """The deploy's API shape with `page_url` (its page under `public_url`, else null) and
    each failing run of its verdict with its own `page_url`."""
    body = deploy_to_dict(record)
    body["page_url"] = deploy_page_url(public_url, record.id)
    verdict = body["verdict"]
    if isinstance(verdict, dict) and "failing" in verdict:
        body["verdict"] = verdict | {"failing": failing_with_pages(verdict["failing"], public_url)}
    return body
