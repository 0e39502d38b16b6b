"""The one redaction helper every output uses, so secrets never reach logs, spans, reports
or pages."""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import io
import itertools
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
HEADERS_MAX = 50
HEADER_VALUE_MAX = 300
URL_HEADERS = frozenset({"location", "content-location", "referer"})

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
_MIN_BASE64_FRAGMENT = 6
_JSON_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}


def _hex_any_case(byte: int) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in f"{byte:02X}")


def _char_pattern(char: str) -> str:
    """Every way one character of a secret may be written: itself, percent-encoded (its
    UTF-8 bytes, either hex case), `+` for a space, or JSON-escaped at any depth."""
    options = [re.escape(char)]
    encoded = "".join("%" + _hex_any_case(b) for b in char.encode())
    if encoded != re.escape(char):
        options.append(encoded)
    if char == " ":
        options.append(r"\+")
    if char in '"/':
        options.append(r"\\+" + re.escape(char))
    elif char == "\\":
        options[0] = r"\\+"
    elif char in _JSON_ESCAPES:
        options.append(r"\\+" + _JSON_ESCAPES[char])
    if ord(char) > 0x7E or ord(char) < 0x20:
        units = char.encode("utf-16-be")
        escaped = "".join(
            r"\\+u" + _hex_any_case(units[i]) + _hex_any_case(units[i + 1])
            for i in range(0, len(units), 2)
        )
        options.append(escaped)
    # The longer forms first: `%25` must not match as a bare `%` followed by "25".
    return options[0] if len(options) == 1 else "(?:" + "|".join(reversed(options)) + ")"


def _encoded_pattern(secret: str) -> str:
    return "".join(_char_pattern(c) for c in secret)


@functools.lru_cache(maxsize=256)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    """The compiled pattern of every encoding of `secret` (configured secrets compile once
    per process, not once per run)."""
    return re.compile(_encoded_pattern(secret))


def _base64_forms(secret: bytes) -> set[str]:
    """The base64 text (standard and URL-safe) of `secret` alone, and of the characters
    that only its bytes determine when it sits at any offset inside a longer encoded
    value (`user:secret` in a Basic credential)."""
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode().rstrip("=")
        start = (offset * 8 + 5) // 6  # the characters that mix in the prefix's bits
        end = len(encoded) if (offset + len(secret)) % 3 == 0 else len(encoded) - 1
        fragment = encoded[start:end]
        if offset == 0:
            fragment = base64.b64encode(secret).decode().rstrip("=")
        if len(fragment) >= _MIN_BASE64_FRAGMENT:
            forms.add(fragment)
            forms.add(fragment.replace("+", "-").replace("/", "_"))
    return forms


def is_sensitive_name(name: str) -> bool:
    """True for header, query or field names that conventionally carry credentials."""
    return name.lower() in SENSITIVE_HEADERS or bool(_SENSITIVE_NAME.search(name))


class Redactor:
    """Knows the secret values of one run and masks them, and credential-shaped fields,
    in any text — in every encoding a secret takes on the wire or in an output: raw,
    percent-encoded (any safe set, either hex case, `+` for a space), JSON-escaped (at any
    depth), and base64 (alone, or inside a longer encoded value such as Basic auth)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._literals: set[str] = set()
        self._order: list[tuple[str, bool]] | None = None
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a value to mask wherever it appears (short values are ignored: masking
        "a" everywhere would destroy every report)."""
        if len(value) < _MIN_SECRET_LEN or value in self._secrets:
            return
        self._secrets.add(value)
        self._literals |= _base64_forms(value.encode())
        self._order = None

    def add_basic_auth(self, user: str, password: str) -> None:
        """Register a Basic credential (`base64(user:password)`) and its password."""
        self.add(password)
        self._literals.add(base64.b64encode(f"{user}:{password}".encode()).decode())
        self._order = None

    def _forms(self) -> list[tuple[str, bool]]:
        """(value, is_secret) longest first, so a secret containing another is masked
        whole; literals are the base64 forms."""
        if self._order is None:
            forms = [(s, True) for s in self._secrets]
            forms += [(lit, False) for lit in self._literals if lit not in self._secrets]
            self._order = sorted(forms, key=lambda form: len(form[0]), reverse=True)
        return self._order

    def text(self, value: str) -> str:
        """Mask known secrets and credential-looking JSON fields in free text."""
        forms = self._forms()
        if forms:
            # Without `%`, `\` or `+` no encoded form can be there: a plain replace finds
            # exactly what the pattern would, without compiling it (a run's new session
            # token would otherwise cost ~1 ms of every run).
            encoded = "%" in value or "\\" in value or "+" in value
            for form, is_secret in forms:
                if is_secret and encoded:
                    value = _secret_pattern(form).sub(MASK, value)
                elif form in value:
                    value = value.replace(form, MASK)
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

    def headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Headers as a report may show them: credential headers (by name: Authorization,
        Cookie, anything naming a token, key, secret, session...) masked whole, known
        secrets masked in the others; at most HEADERS_MAX, each value cut at
        HEADER_VALUE_MAX characters (after redacting, so no secret shows in part)."""
        shown = []
        for name, value in itertools.islice(headers, HEADERS_MAX):
            if name.lower() in SENSITIVE_HEADERS or is_sensitive_name(name):
                value = MASK
            else:
                # A redirect's target may carry a token in its query, like any URL.
                value = self.url(value) if name.lower() in URL_HEADERS else self.text(value)
                if len(value) > HEADER_VALUE_MAX:
                    value = value[: HEADER_VALUE_MAX - 1] + "…"
            shown.append((self.text(name), value))
        return tuple(shown)


# -- what log lines and a process's own output pass through ------------------------------

_process_redactor = Redactor()
_run_redactor: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "synth_run_redactor", default=None
)


def register_process_secret(value: str) -> None:
    """Mask `value` in every log line and every write to stdout/stderr of this process
    (configured secrets are registered when their environment is resolved)."""
    _process_redactor.add(value)


@contextlib.contextmanager
def redacting_run(redactor: Redactor) -> Iterator[None]:
    """While a run executes, its redactor (which also knows values the run marked
    secret, such as session tokens) masks log lines made in its context."""
    token = _run_redactor.set(redactor)
    try:
        yield
    finally:
        _run_redactor.reset(token)


def redact_output(text: str) -> str:
    """Mask every secret this process knows, and those of the run in progress."""
    run = _run_redactor.get()
    if run is not None:
        text = run.text(text)
    return _process_redactor.text(text)


class RedactingStream(io.TextIOBase):
    """A text stream whose writes pass `redact_output` first: what check code prints
    reaches a terminal or a log collector masked."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact_output(text))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    @property
    def inner(self) -> TextIO:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install_redacting_streams() -> None:
    """Route sys.stdout and sys.stderr through RedactingStream (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
