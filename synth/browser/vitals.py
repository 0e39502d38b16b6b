"""The page-side half of a browser step's measurements: an init script that observes
Core Web Vitals from the document's start, and the read-out at the step's end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth.browser.facts import BrowserFacts

if TYPE_CHECKING:
    from synth.browser.session import StepWatch

# LCP and CLS as web-vitals defines them (layout shifts without recent input); TBT as
# the long tasks' time over 50 ms each (Lighthouse counts from FCP to TTI; a synthetic
# step counts from the navigation to the step's end).
INIT_SCRIPT = """
(() => {
  if (window.__synth) return;
  const s = window.__synth = {lcp: null, cls: 0, tbt: 0};
  const watch = (type, take) => {
    try { new PerformanceObserver((l) => l.getEntries().forEach(take))
            .observe({type, buffered: true}); } catch (e) {}
  };
  watch('largest-contentful-paint', (e) => { s.lcp = e.renderTime || e.loadTime || e.startTime; });
  watch('layout-shift', (e) => { if (!e.hadRecentInput) s.cls += e.value; });
  watch('longtask', (e) => { s.tbt += Math.max(0, e.duration - 50); });
})();
"""

READ_SCRIPT = """
() => {
  const n = performance.getEntriesByType('navigation')[0];
  const s = window.__synth || {};
  let bytes = n ? (n.transferSize || 0) : 0;
  for (const r of performance.getEntriesByType('resource')) bytes += r.transferSize || 0;
  const nav = n ? {
    dns: n.domainLookupEnd - n.domainLookupStart,
    connect: n.connectEnd - n.connectStart,
    tls: n.secureConnectionStart > 0 ? n.connectEnd - n.secureConnectionStart : null,
    ttfb: n.responseStart - n.requestStart,
    dcl: n.domContentLoadedEventEnd > 0 ? n.domContentLoadedEventEnd - n.startTime : null,
    load: n.loadEventEnd > 0 ? n.loadEventEnd - n.startTime : null,
    end: Math.max(n.loadEventEnd, n.domContentLoadedEventEnd, n.responseEnd),
  } : null;
  return {origin: performance.timeOrigin, nav, bytes, lcp: s.lcp ?? null,
          cls: s.cls ?? null, tbt: s.tbt ?? null, now: performance.now()};
}
"""


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and value >= 0:
        return float(value) / 1000
    return None


def facts(measured: dict[str, Any] | None, watch: StepWatch, url: str) -> BrowserFacts:
    """The step's facts from the read-out (None: the page could not be read)."""
    status = watch.document_status
    base: dict[str, Any] = {
        "url": url,
        "status": status,
        "navigations": watch.navigations,
        "requests": watch.requests,
        "console_errors": len(watch.console_errors),
        "page_errors": len(watch.page_errors),
    }
    if not measured:
        return BrowserFacts(**base)
    nav = measured.get("nav") if watch.navigations else None
    if isinstance(nav, dict):
        base.update(
            dns_s=_seconds(nav.get("dns")),
            connect_s=_seconds(nav.get("connect")),
            tls_s=_seconds(nav.get("tls")),
            ttfb_s=_seconds(nav.get("ttfb")),
            dom_content_loaded_s=_seconds(nav.get("dcl")),
            load_s=_seconds(nav.get("load")),
            lcp_s=_seconds(measured.get("lcp")),
            cls=measured.get("cls") if isinstance(measured.get("cls"), int | float) else None,
            tbt_s=_seconds(measured.get("tbt")),
        )
    bytes_ = measured.get("bytes")
    base["bytes"] = int(bytes_) if isinstance(bytes_, int | float) else 0
    return BrowserFacts(**base)


def navigation_span_ns(measured: dict[str, Any]) -> tuple[int, int]:
    """The navigation's start and end as unix nanoseconds, from the page's clock."""
    origin_ms = float(measured.get("origin") or 0.0)
    nav = measured.get("nav")
    end_ms = float(nav.get("end") or 0.0) if isinstance(nav, dict) else 0.0
    return int(origin_ms * 1_000_000), int((origin_ms + end_ms) * 1_000_000)
