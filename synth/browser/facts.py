"""What a browser step measured: the main document's navigation timings (the browser's own
Performance API), Core Web Vitals where Chromium measures them, and what the page loaded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrowserFacts:
    """A browser step's facts (kind `browser`); times in seconds, None where the step had
    no navigation or the browser did not measure it."""

    url: str
    """The page's URL when the step ended (redacted)."""
    status: int | None
    """The status of the step's last main-document response."""
    navigations: int
    dns_s: float | None = None
    connect_s: float | None = None
    tls_s: float | None = None
    ttfb_s: float | None = None
    """From the request's start to the document's first byte."""
    dom_content_loaded_s: float | None = None
    load_s: float | None = None
    lcp_s: float | None = None
    """Largest Contentful Paint, from the navigation's start."""
    cls: float | None = None
    """Cumulative Layout Shift (unitless)."""
    tbt_s: float | None = None
    """Total Blocking Time: long tasks' time over 50 ms each, since the navigation."""
    requests: int = 0
    bytes: int = 0
    """Bytes transferred for the document and its resources (the Performance API's
    transferSize: cross-origin resources without Timing-Allow-Origin count 0)."""
    console_errors: int = 0
    page_errors: int = 0

    def timings(self) -> dict[str, float]:
        """The measured navigation timings and vitals by name (`ttfb`, `lcp`, ...)."""
        named = {
            "dns": self.dns_s,
            "connect": self.connect_s,
            "tls": self.tls_s,
            "ttfb": self.ttfb_s,
            "dom_content_loaded": self.dom_content_loaded_s,
            "load": self.load_s,
            "lcp": self.lcp_s,
            "tbt": self.tbt_s,
        }
        return {k: v for k, v in named.items() if v is not None}
