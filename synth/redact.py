"""The one redaction helper every output uses, so secrets never reach logs, spans, reports
or pages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-synth-signature",
    }
)
_SENSITIVE_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|apikey|auth|credential|signature|sig|session)",
    re.IGNORECASE,
)
# "token": "abc" / "password":"x" inside JSON or form-ish text.
_SENSITIVE_JSON_FIELD = re.compile(
    r'("(?:[A-Za-z0-9_\-]*)(?:pass(?:word|wd)?|secret|token|api[-_]?key|apikey|credential)'
    r'(?:[A-Za-z0-9_\-]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4


def is_sensitive_name(name: str) -> bool:
    """True for header, query or field names that conventionally carry credentials."""
    return name.lower() in SENSITIVE_HEADERS or bool(_SENSITIVE_NAME.search(name))


class Redactor:
    """Knows the secret values of one run and masks them, and credential-shaped fields,
    in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a value to mask wherever it appears (short values are ignored: masking
        "a" everywhere would destroy every report)."""
        if len(value) < _MIN_SECRET_LEN:
            return
        # Also the forms a URL carries it in (path segment, query value).
        forms = {value, quote(value), quote(value, safe=""), quote_plus(value)} - self._secrets
        if forms:
            self._secrets |= forms
            # Longest first so a secret containing another is masked whole.
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def text(self, value: str) -> str:
        """Mask known secrets and credential-looking JSON fields in free text."""
        if self._pattern is not None:
            value = self._pattern.sub(MASK, value)
        return _SENSITIVE_JSON_FIELD.sub(lambda m: f'{m.group(1)}"{MASK}"', value)

    def url(self, url: str) -> str:
        """Mask userinfo passwords and credential-named query parameters, then known secrets."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.text(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if is_sensitive_name(k) else v) for k, v in pairs], safe="*"
            )
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Mask credential headers by name and known secrets in the others."""
        return {
            name: MASK if name.lower() in SENSITIVE_HEADERS else self.text(value)
            for name, value in headers.items()
        }
