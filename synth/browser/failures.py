"""Playwright's errors in the shared vocabulary: a navigation that times out is `timeout`,
a refused port `connect`, a locator or `expect` that does not match `assertion` (naming
the locator, expected and actual), a crashed page or browser `script_error`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from synth.model import FailureType

# Chromium's net error codes (net/base/net_error_list.h) by the failure they mean.
_NET_ERRORS: tuple[tuple[re.Pattern[str], FailureType], ...] = (
    (re.compile(r"net::ERR_NAME_(NOT_RESOLVED|RESOLUTION_FAILED)"), FailureType.DNS),
    (re.compile(r"net::ERR_(CERT_\w+|SSL_\w+|BAD_SSL_CLIENT_AUTH_CERT)"), FailureType.TLS),
    (re.compile(r"net::ERR_(CONNECTION_TIMED_OUT|TIMED_OUT)"), FailureType.TIMEOUT),
    (
        re.compile(
            r"net::ERR_(CONNECTION_(REFUSED|RESET|CLOSED|FAILED|ABORTED)|ADDRESS_\w+"
            r"|EMPTY_RESPONSE|UNSAFE_PORT|INTERNET_DISCONNECTED|NETWORK_\w+|SOCKET_\w+)"
        ),
        FailureType.CONNECT,
    ),
)
_GONE = (
    "Target page, context or browser has been closed",
    "Target closed",
    "Browser has been closed",
    "Browser closed",
    "Connection closed",
    "Target crashed",
    "Page crashed",
)
_CALL = re.compile(r"^(?P<api>[A-Z]\w*\.\w+): ")
_WAITING_FOR = re.compile(r"waiting for (?P<locator>.+)$", re.MULTILINE)
_EXPECTED = re.compile(
    r"^(?P<what>Locator|Page URL|Page title) expected (?P<verb>[^\n]*?)"
    r"(?P<expected>'[^\n]*'|\"[^\n]*\"|\S+)?\n(?:Actual value: (?P<actual>[^\n]*))?",
)
_EXPECT_CALL = re.compile(r'Expect "(?P<matcher>\w+)" (?P<locator>[^\n]*?) with timeout')


@dataclass(frozen=True, slots=True)
class Classified:
    type: FailureType
    message: str
    expected: str | None = None
    actual: str | None = None


def classify(error: BaseException) -> Classified | None:
    """The failure `error` (raised by Playwright) means, or None if it is not Playwright's."""
    module = type(error).__module__
    text = str(error)
    if isinstance(error, AssertionError) and _EXPECTED.match(text):
        return _expectation(text)
    if not module.startswith("playwright"):
        return None
    headline = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    if any(marker in text for marker in _GONE):
        return Classified(
            FailureType.SCRIPT_ERROR,
            f"the browser went away during the step ({headline}): it crashed, ran out of "
            "memory or was killed; synth starts a new one for the next run",
        )
    call = _CALL.match(headline)
    api = call.group("api") if call else ""
    for pattern, failure_type in _NET_ERRORS:
        found = pattern.search(text)
        if found:
            return Classified(failure_type, headline, actual=found.group(0))
    if type(error).__name__ == "TimeoutError":
        waiting = _WAITING_FOR.search(text)
        if api.startswith(("Locator.", "Page.wait_for_selector", "Frame.wait_for_selector")):
            locator = waiting.group("locator") if waiting else api
            return Classified(
                FailureType.ASSERTION,
                f"{api}: no element matched {locator} in time",
                expected=f"an actionable element matching {locator}",
                actual="none found before the action timeout",
            )
        return Classified(FailureType.TIMEOUT, headline)
    return Classified(FailureType.SCRIPT_ERROR, headline)


def _expectation(text: str) -> Classified:
    """An `expect(...)` assertion: `Locator expected to have text 'X'\\nActual value: Y`."""
    found = _EXPECTED.match(text)
    assert found is not None
    call = _EXPECT_CALL.search(text)
    subject = call.group("locator") if call else found.group("what")
    expected = (found.group("verb") + (found.group("expected") or "")).strip()
    actual = (found.group("actual") or "").strip()
    if "element(s) not found" in text or (actual == "None" and "resolved to" not in text):
        actual = "no element matched"
    elif not actual:
        actual = 'empty text ("")'

    return Classified(
        FailureType.ASSERTION,
        f"{subject} expected {expected}",
        expected=expected,
        actual=actual,
    )
