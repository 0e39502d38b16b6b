"""Where a person opens a run or a deploy in the agent's web pages (`/ui/runs/{run_id}`,
`/ui/deploys/{deploy_id}`), absolute under `server.public_url`.

Only the agent serves these pages, and only for what it stored: every report and page
that links one goes through these two functions, and links nothing when `public_url` is
not set (a path alone is no use in a PagerDuty incident or a CI log).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

UI_PREFIX = "/ui"

RunPage = Callable[[str], str | None]
"""run id → its page, or None (a report's lookup of the pages the agent named)."""


def _page(public_url: str | None, kind: str, ident: str) -> str | None:
    if not public_url or not public_url.strip():
        return None
    return f"{public_url.strip().rstrip('/')}{UI_PREFIX}/{kind}/{quote(ident, safe='')}"


def run_page_url(public_url: str | None, run_id: str) -> str | None:
    """`<public_url>/ui/runs/<run_id>` (the id URL-quoted), or None without a public URL."""
    return _page(public_url, "runs", run_id)


def deploy_page_url(public_url: str | None, deploy_id: str) -> str | None:
    """`<public_url>/ui/deploys/<deploy_id>` (URL-quoted), or None without a public URL."""
    return _page(public_url, "deploys", deploy_id)
