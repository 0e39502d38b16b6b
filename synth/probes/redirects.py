"""Following HTTP redirects as browsers and curl -L do (RFC 9110 §15.4, the Fetch
standard): where the next hop goes, with which method, body and headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx2

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_REDIRECTS = 10
# Credentials a browser never carries to another origin.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Describe the body that a method change drops.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


@dataclass(frozen=True, slots=True)
class Hop:
    """The request a redirect leads to."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


def next_hop(
    *,
    method: str,
    url: str,
    status: int,
    response_headers: httpx2.Headers,
    request_headers: Mapping[str, str],
    content: bytes | None,
) -> Hop | None:
    """The next request if this response redirects (a 3xx with a Location), else None."""
    location = response_headers.get("location")
    if status not in REDIRECT_STATUSES or not location:
        return None
    current = httpx2.URL(url)
    try:
        target = current.join(location)
    except httpx2.InvalidURL:
        return None
    if target.scheme not in ("http", "https"):
        return None
    if not target.fragment and current.fragment:
        target = target.copy_with(fragment=current.fragment)
    headers = dict(request_headers)
    if _origin(target) != _origin(current):
        headers = {k: v for k, v in headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS}
    # 303 turns anything but HEAD into GET; 301/302 turn POST into GET (what every browser
    # does, and RFC 9110 allows); 307/308 resend the same method and body.
    new_method = method
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        new_method = "GET"
    if new_method != method:
        content = None
        headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    return Hop(method=new_method, url=str(target), headers=headers, content=content)


def too_many_message(limit: int, visited: Sequence[str]) -> str:
    """ "too many redirects (10): A → B → A": the chain up to its first repeat (a loop), or
    its start and end when it never repeats."""
    seen: set[str] = set()
    shown: list[str] = []
    for url in visited:
        shown.append(url)
        if url in seen:
            break
        seen.add(url)
    else:
        if len(shown) > 4:
            shown = [*shown[:2], "…", shown[-1]]
    return f"too many redirects ({limit}): " + " → ".join(shown)


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default
